# The follower's swap is atomic: predicts from several clients, on both
# workers, while the trainer publishes version after version, each
# answer equals the answer of one published version (never a mix of two
# versions' parameters), and the follower moves through several of them.
# A redis-server of the suite's own on 127.0.0.1, stopped by its pid.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd qw(abs_path);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use LearnServer;
use LearnClient;
use LearnBody;

chomp(my $redis_bin = `command -v redis-server 2>/dev/null` // '');
plan skip_all => 'redis-server is not installed (Debian: redis-server)'
    unless $redis_bin;

my $root = abs_path('.');
my %redis_pids;
END { kill 'KILL', keys %redis_pids }

# one command on a fresh connection, the reply's first line (enough for
# PING and a short GET here; t/140-redis.t has the binary-safe client)
sub redis_cmd {
    my ($port, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 3)
        or return undef;
    print {$s} '*' . @args . "\r\n"
             . join('', map { '$' . length($_) . "\r\n$_\r\n" } @args);
    my $line = <$s> // return undef;
    $line =~ s/\r\n\z//;
    if ($line =~ /^\$(-?\d+)$/) {
        return undef if $1 < 0;
        $line = <$s> // return undef;
        $line =~ s/\r\n\z//;
        return $line;
    }
    return substr($line, 1);
}

my $rport = LearnServer::free_port();
my $rdir = "$root/t/servroot-redis-swap-r";
remove_tree($rdir);
make_path($rdir);
my $rpid = fork // die "fork: $!";
if ($rpid == 0) {
    open STDOUT, '>>', "$rdir/redis.log" or die;
    open STDERR, '>&', \*STDOUT or die;
    exec $redis_bin, '--port', $rport, '--bind', '127.0.0.1', '--dir', $rdir,
         '--save', '', '--appendonly', 'no', '--daemonize', 'no';
    exit 127;
}
$redis_pids{$rpid} = 1;
LearnServer::wait_for(sub { (redis_cmd($rport, 'PING') // '') eq 'PONG' })
    or die "redis-server did not start: see $rdir/redis.log";

my $url = "redis://127.0.0.1:$rport/t141";
my $json = { 'Content-Type' => 'application/json' };
my $x = '{"x": [[0, 1], [1, 0], [0.5, 0.25], [1, 1]]}';
my $locs = 'location = /train { learn_train xor; }
            location = /predict { learn_predict xor; }
            location = /status { learn_status; }';

my $t = LearnServer->new(name => 'redis-swap-t', workers => 2,
    http => "learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt "
          . "checkpoint_interval=50ms checkpoint_keep=14 store=$url;",
    server => $locs)->start;
my $f = LearnServer->new(name => 'redis-swap-f', workers => 2,
    http => "learn_model xor models/xor.lua seed=2 follow=$url;",
    server => $locs)->start;

my $http = LearnClient->new;
sub predict {
    my ($srv, $q) = @_;
    my $r = LearnClient->new->post($srv->url('/predict' . ($q // '')),
                                   { headers => $json, content => $x });
    return "$r->{status} $r->{content}";
}
sub train_one {
    my $r = $http->post($t->url('/train'), { headers => $json,
        content => '{"x": [[0, 1], [1, 1], [1, 0], [0, 0]], "y": [[1], [0], [1], [0]]}' });
    $r->{status} == 200 or die "train: $r->{status} $r->{content}";
    return json_decode($r->{content})->{step};
}
sub published {
    my ($step) = @_;
    return LearnServer::wait_for(sub {
        (redis_cmd($rport, 'GET', 't141:{xor}:latest') // '') =~ /^$step:/ });
}

# the first version, so the follower serves before the clients start
my $step = train_one();
published($step) or BAIL_OUT('the trainer did not publish');
LearnServer::wait_for(sub { predict($f) =~ /^200 / }) or BAIL_OUT('no first version');
my @steps = ($step);

# clients: predicts in a loop until told to stop, one answer per line
my $stop = "$rdir/stop";
my @kids;
for my $i (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # no die past here: the parent's END would kill its redis-server
        my $ok = eval {
            open my $out, '>', "$rdir/answers.$i" or die;
            until (-e $stop) {
                print {$out} predict($f), "\n";
            }
            close $out;
            1;
        };
        POSIX::_exit($ok ? 0 : 1);
    }
    push @kids, $pid;
}

# twelve more versions, each published (and swapped in) under that load
for (1 .. 12) {
    $step = train_one();
    published($step) or fail("version $step was not published");
    push @steps, $step;
    sleep 0.05;
}
sleep 0.3;
open my $fh, '>', $stop or die;
close $fh;
waitpid $_, 0 for @kids;

# what each published version answers: the trainer's kept versions
my %valid;
for my $s (@steps) {
    my $a = predict($t, "?version=$s");
    like($a, qr/^200 /, "the trainer answers kept version $s") or next;
    $valid{$a} = $s;
}
is(scalar keys %valid, scalar @steps, 'each version answers differently');

my (%seen, $n, @bad);
for my $i (1 .. 4) {
    open my $in, '<', "$rdir/answers.$i" or die;
    while (my $line = <$in>) {
        chomp $line;
        $n++;
        if (exists $valid{$line}) {
            $seen{$valid{$line}}++;
        } else {
            push @bad, $line;
        }
    }
}
cmp_ok($n, '>', 100, "the clients got $n answers during the swaps");
is(scalar @bad, 0, 'every answer is the answer of one published version')
    or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
cmp_ok(scalar keys %seen, '>=', 4,
       'the follower moved through several versions meanwhile ('
       . join(', ', sort { $a <=> $b } keys %seen) . ')');
my $st = json_decode($http->get($f->url('/status'))->{content})->{models}{xor};
is($st->{step}, $steps[-1], 'and serves the newest at the end');

$t->stop;
$f->stop;
redis_cmd($rport, 'SHUTDOWN', 'NOSAVE');
my $deadline = time + 5;
while (LearnServer::alive($rpid) && time < $deadline) { sleep 0.02 }
kill 'KILL', $rpid if LearnServer::alive($rpid);
waitpid $rpid, 0;
delete $redis_pids{$rpid};

done_testing();
