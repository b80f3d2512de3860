# A checkpoint directory the workers cannot write in (a 0700 home above
# it, a read-only mount) is said at start, in one line from one worker,
# not found out later by one failed write per interval.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Path qw(make_path remove_tree);
use Cwd qw(abs_path);
use LearnServer;

my $dir = abs_path('t') . '/servroot-ckpt-locked-dir';
remove_tree($dir);
make_path($dir);

# root passes every permission check, so as root the workers run as
# nobody and the directory is root's own 0700; otherwise it is 0500
my $main = '';
if ($> == 0) {
    $main = 'user nobody nogroup;';
    chmod 0700, $dir;
} else {
    chmod 0500, $dir;
}

my $user = $> == 0 ? 'nobody' : '\(current\)';
my $line = qr/learn_model "xor": workers \(user "$user"\) cannot write /
         . qr/checkpoints in "\Q$dir\E", the model will not be saved/;

my $srv = LearnServer->new(
    name    => 'ckpt-locked',
    workers => 2,
    main    => $main,
    http    => "learn_model xor models/xor.lua "
             . "checkpoint=$dir/xor.ckpt checkpoint_interval=1s;",
    server  => 'location = /predict { learn_predict xor; }',
)->start;

my @hits = $srv->wait_log($line);
is(scalar @hits, 1, 'an unwritable checkpoint directory is said once at start');
like($hits[0] // '', qr/\[error\]/, 'at level error, shown by default');
$srv->stop;

# the same directory writable by the workers (as Test::Nginx runs them:
# root when we are root): nothing said
chmod 0777, $dir;
$srv = LearnServer->new(
    name    => 'ckpt-locked',
    workers => 2,
    http    => "learn_model xor models/xor.lua "
             . "checkpoint=$dir/xor.ckpt checkpoint_interval=1s;",
    server  => 'location = /predict { learn_predict xor; }',
)->start;
my @none = $srv->wait_log(qr/cannot write checkpoints/, timeout => 1);
is(scalar @none, 0, 'a writable directory gets no such line');
$srv->stop;

remove_tree($dir);
done_testing;
