# Two workers, eight concurrent clients: every answered train is one
# applied step (status "step" equals the 200s), and XOR trained this way
# over HTTP converges and predicts the right signs in every encoding.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use POSIX ();
use LearnServer;
use LearnBody;

my $srv = LearnServer->new(
    name    => 'workers',
    workers => 2,
    http    => 'learn_model xor models/xor.lua seed=7;',
    server  => 'location = /train { learn_train xor; }
                location = /predict { learn_predict xor; }
                location = /status { learn_status; }',
)->start;

my $clients = 8;
my $per_client = 400;
my @xs = ([0, 0], [0, 1], [1, 0], [1, 1]);
my @ys = ([-0.8], [0.8], [0.8], [-0.8]);

# each child posts full-batch train steps and exits with its count of 200s
my @pids;
for my $c (1 .. $clients) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $http = LearnClient->new;
        my $ok = 0;
        for (1 .. $per_client) {
            my $r = $http->post($srv->url('/train'), {
                headers => { 'Content-Type' => 'application/msgpack' },
                content => mp({ x => \@xs, y => \@ys }),
            });
            $ok++ if $r->{status} == 200;
        }
        # exit codes hold 0-255: report through a file instead
        open my $fh, '>', "$srv->{prefix}/count.$c" or die $!;
        print $fh $ok;
        close $fh;
        POSIX::_exit(0);    # no DESTROY: the parent owns nginx
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;

my $answered = 0;
for my $c (1 .. $clients) {
    open my $fh, '<', "$srv->{prefix}/count.$c" or die $!;
    $answered += <$fh>;
}
is($answered, $clients * $per_client, 'every concurrent train was answered 200');

my $http = LearnClient->new;
my $status = json_decode($http->get($srv->url('/status'))->{content});
is($status->{models}{xor}{step}, $answered,
   'status step equals the number of answered trains');
cmp_ok($status->{models}{xor}{loss}, '<', 0.02, 'XOR loss is below 0.02');

# the same four inputs predicted through three encodings agree, and
# have the signs of the targets
my $json = json_decode($http->post($srv->url('/predict'), {
    headers => { 'Content-Type' => 'application/json' },
    content => '{"x": [[0,0],[0,1],[1,0],[1,1]]}',
})->{content})->{y};
my $nested = mp_unpack($http->post($srv->url('/predict'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => mp({ x => \@xs }),
})->{content})->{y};
my $np = $http->post($srv->url('/predict'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('xor_predict_np.mp'),
})->{content};
# the reply's data bin is the last 16 bytes: four little-endian float32
my @np = unpack('f<4', substr($np, -16));

for my $i (0 .. 3) {
    my $want = $ys[$i][0] > 0 ? 1 : -1;
    ok($json->[$i][0] * $want > 0.5, "JSON predict $i has the right sign")
        or diag("got $json->[$i][0]");
    ok(abs($json->[$i][0] - $nested->[$i][0]) < 1e-6,
       "nested msgpack predict $i equals JSON");
    ok(abs($json->[$i][0] - $np[$i]) < 1e-6,
       "msgpack-numpy predict $i equals JSON");
}

$srv->stop;

open my $log, '<', $srv->error_log or die $!;
my @bad = grep { /\[(error|crit|alert|emerg)\]/ } <$log>;
is(scalar @bad, 0, 'no error lines in error.log') or diag(@bad);

# worker_processes auto: one worker per core, one model for all of them
$srv = LearnServer->new(
    name    => 'workers-auto',
    workers => 'auto',
    http    => 'learn_model xor models/xor.lua seed=7;',
    server  => 'location = /train { learn_train xor; add_header X-Pid $pid; }
                location = /status { learn_status; }',
)->start;
chomp(my $cores = `nproc`);
is(scalar(my @w = $srv->workers), $cores, "worker_processes auto: $cores workers");
my (%seen, $ok);
for (1 .. 60) {
    my $r = LearnClient->new->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/json',
                     'Connection' => 'close' },
        content => '{"x": [[0, 1]], "y": [[0.8]]}',
    });
    $ok++ if $r->{status} == 200;
    $seen{ $r->{headers}{'x-pid'} // '' }++;
}
is($ok, 60, 'every train answered');
is(json_decode($http->get($srv->url('/status'))->{content})->{models}{xor}{step},
   60, 'one step per answer, whichever worker answered');
cmp_ok(scalar keys %seen, '>=', $cores > 1 ? 2 : 1,
       scalar(keys %seen) . ' workers answered');
$srv->stop;

done_testing();
