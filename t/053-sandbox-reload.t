# A model file that would hold the master (an endless loop) fails a
# reload with a clear message within the limit, and the running
# configuration keeps serving.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use Time::HiRes qw(sleep time);
use LearnServer;

our $srv = LearnServer->new(
    name    => 'sandbox-reload',
    workers => 1,
    http    => 'learn_model m models/xor.lua seed=1;',
    server  => 'location = /predict { learn_predict m; }',
)->start;

my $http = LearnClient->new;

sub predict {
    return $http->post($srv->url('/predict'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0, 1]]}',
    })->{status};
}

is(predict(), 200, 'the model serves');

my $file = "$srv->{prefix}/conf/spin.lua";
open my $fh, '>', $file or die $!;
print $fh "local nn = require \"learn.nn\"\nwhile true do end\n";
close $fh;

my @workers = $srv->workers;
my $from = $srv->log_size;
my $t0 = time;
$srv->hup(http => 'learn_model m spin.lua seed=1;');

my @hits = $srv->wait_log(qr/spin\.lua:2: the model file ran (more than 100 million Lua instructions|for more than 2 seconds)/,
                          from => $from, timeout => 20);
my $took = time - $t0;
ok(@hits, 'the reload fails naming the file, the line and the limit');
cmp_ok($took, '<', 10, sprintf('within the limit (%.1f s)', $took));

is(predict(), 200, 'the running configuration still serves');
is_deeply([sort $srv->workers], [sort @workers],
          'with the same workers');

done_testing();
