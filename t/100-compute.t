# Big work never blocks the event loop: with learn_thread_pool a ~100 ms
# train step runs on a pool thread while the same (single) worker answers
# another connection at once; without it, that answer waits.  learn_batch
# stacks concurrent predicts into one forward pass whose rows match what
# each request gets alone.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use List::Util ();
use LearnServer;
use LearnClient;
use LearnBody;
use LearnValgrind;

plan skip_all => 'train steps of the 784-1024-1024-10 model'
    if LearnValgrind::heavy('t/100-compute.t');

# a train body of 512 samples for the 784-1024-1024-10 model (a step of
# about 100 ms here), in the {"shape", "dtype", "data": bin} form
srand(1);
my $n = 512;
my $big = "\x82\xa1x" . raw_tensor([$n, 784], 'float32',
                                     pack('f<*', map { rand() } 1 .. $n * 784))
        . "\xa1y" . raw_tensor([$n], 'int32',
                                     pack('l<*', map { int(rand(10)) } 1 .. $n));



# the latency of GET /ok while a big train step is running: /ok goes
# once the worker has burnt 30 ms of CPU on the step (a fixed sleep is
# not "under way" on a loaded machine); also returns how far into the
# step it went
sub ok_latency_during_step {
    my ($srv) = @_;
    my $client = LearnClient->new;
    $client->get($srv->url('/ok'));               # connect, warm up
    my $tick = POSIX::sysconf(POSIX::_SC_CLK_TCK());
    my $cpu0 = $srv->worker_ticks;
    my $t0 = time;
    my $train = LearnClient::raw_post($srv, '/train', $big);
    sleep 0.002 until $srv->worker_ticks - $cpu0 >= 0.03 * $tick
                      || time - $t0 > 10;
    my $t1 = time;
    my $r = $client->get($srv->url('/ok'));
    my $ok_ms = (time - $t1) * 1000;
    my $reply = LearnClient::read_all($train);
    my $step_ms = (time - $t0) * 1000;
    return ($r->{status}, $ok_ms, $reply, $step_ms, ($t1 - $t0) * 1000);
}

my %conf = (
    workers => 1,
    http    => 'learn_model big models/mlp_big.lua seed=1; client_max_body_size 4m;',
);

# 1. with the thread pool
my $srv = LearnServer->new(%conf, name => 'compute-pool',
    main   => 'thread_pool learn threads=2;',
    server => 'location = /ok { return 200 "ok"; }
               location = /train { learn_thread_pool learn; learn_train big; }',
)->start;
my ($code, $ok_ms, $reply, $step_ms, $into_ms) = ok_latency_during_step($srv);
is($code, 200, '/ok answered during the step');
like($reply, qr/^HTTP\/1\.1 200/, 'the step answered 200');
cmp_ok($step_ms, '>=', 30, sprintf('the step took %.0f ms', $step_ms));
# blocked, /ok would wait for the rest of the step (case 2); on a loaded
# machine the scheduler alone may add a few ms, so the bound is a share
# of what it would have waited
my $bound = List::Util::max(10, ($step_ms - $into_ms) / 4);
cmp_ok($ok_ms, '<', $bound,
       sprintf('with learn_thread_pool /ok took %.1f ms (< %.0f)', $ok_ms, $bound));
$srv->stop;

# 2. the same step inline: the worker is busy, /ok waits
$srv = LearnServer->new(%conf, name => 'compute-inline',
    server => 'location = /ok { return 200 "ok"; }
               location = /train { learn_train big; }',
)->start;
($code, $ok_ms, $reply, $step_ms, $into_ms) = ok_latency_during_step($srv);
# /ok came $into_ms into the step: it waits for the rest of it
cmp_ok($ok_ms, '>', ($step_ms - $into_ms) * 0.5,
       sprintf('inline, /ok waited %.1f ms for the rest of the %.0f ms step '
               . '(sent %.0f ms into it)', $ok_ms, $step_ms, $into_ms));
$srv->stop;

# 3. learn_batch: 24 concurrent single-sample predicts
$srv = LearnServer->new(%conf, name => 'compute-batch',
    server => 'location = /predict { learn_predict big; }
               location = /batched { learn_predict big; learn_batch max=16 timeout=20ms; }
               location = /status { learn_status; }',
)->start;
my @xs = map { my $i = $_; [ map { (($i * 31 + $_) % 17) / 17 } 1 .. 784 ] } 1 .. 24;
my $client = LearnClient->new;
my @alone = map {
    mp_unpack($client->post($srv->url('/predict'), {
        headers => { 'Content-Type' => 'application/msgpack' },
        content => mp({ x => [$_] }) })->{content})->{y}[0]
} @xs;
my @socks = map { LearnClient::raw_post($srv, '/batched', mp({ x => [$_] })) }
            @xs;
my @batched = map {
    my $r = LearnClient::read_all($_);
    my ($body) = $r =~ /\r\n\r\n(.*)$/s;
    mp_unpack($body)->{y}[0];
} @socks;
my $worst = 0;
for my $i (0 .. $#xs) {
    for my $j (0 .. 9) {
        my $d = abs($alone[$i][$j] - $batched[$i][$j]);
        $worst = $d if $d > $worst;
    }
}
cmp_ok($worst, '<', 1e-5, "batched answers match answers alone (max diff $worst)");
my $st = json_decode($client->get($srv->url('/status'))->{content})->{models}{big};
cmp_ok($st->{batches}, '>=', 2, "$st->{batched_predicts} predicts in $st->{batches} batches");
cmp_ok($st->{batches}, '<', 24, 'fewer batches than requests');
$srv->stop;

done_testing();
