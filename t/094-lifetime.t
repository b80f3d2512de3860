# Requests the module parks (a learn_batch queue, the train lock's retry
# timer, a pool task) and the lifetime of their worker: a graceful
# shutdown with worker_shutdown_timeout ends them without a crash, and a
# reload with learn_thread_pool answers every request whose step was
# applied (the step counter equals the 200 answers).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use Cwd ();
use File::Path ();
use LearnServer;
use LearnClient;
use LearnBody;

my $dir = Cwd::abs_path('t') . '/servroot-lifetime-models';
File::Path::make_path($dir);

# a model whose step costs about 12.6M multiply-adds per row, over
# one-number rows: long steps from small bodies
open my $fh, '>', "$dir/wide.lua" or die $!;
print $fh <<'_LUA_';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(1, 2048), nn.Tanh(),
                        nn.Linear(2048, 2048), nn.Tanh(),
                        nn.Linear(2048, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 1e-6 },
}
_LUA_
close $fh;

# {"x": [N, 1], "y": [N, 1]} as float32 bins
sub wide_body {
    my ($n) = @_;
    my $x = pack('f<*', map { ($_ % 17) / 17 } 1 .. $n);
    return "\x82\xa1x" . tensor([$n, 1], $x) . "\xa1y" . tensor([$n, 1], $x);
}

# raw_tensor with 32-bit dimensions
sub tensor {
    my ($shape, $data) = @_;
    return "\x83\xa5shape" . pack('C', 0x90 + @$shape)
         . join('', map { pack('CN', 0xce, $_) } @$shape)
         . "\xa5dtype\xa7float32"
         . "\xa4data\xc6" . pack('N', length $data) . $data;
}

# what a raw_post() socket got within timeout seconds: (reply, closed)
sub read_for {
    my ($s, $timeout) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $deadline = time + $timeout;
    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return ($buf, 1) if !$n;
    }
    return ($buf, 0);
}

sub status {
    my ($srv, $model) = @_;
    return json_decode(LearnClient->new->get($srv->url('/status'))->{content})
           ->{models}{$model};
}

# the master and its workers gone: the seconds it took, or undef
sub wait_exit {
    my ($srv, $pids, $timeout) = @_;
    my $t0 = time;
    while (time - $t0 < $timeout) {
        return time - $t0 unless grep { LearnServer::alive($_) } @$pids;
        sleep 0.02;
    }
    return undef;
}

sub bad_lines {
    my ($srv) = @_;
    open my $log, '<', $srv->error_log or die $!;
    return grep { /exited on signal|\[(alert|crit|emerg)\]/ } <$log>;
}


# 1. a predict waiting in a learn_batch queue when the worker shuts down

my $srv = LearnServer->new(
    name    => 'lifetime-batch',
    workers => 1,
    main    => 'worker_shutdown_timeout 1s;',
    http    => 'learn_model xor models/xor.lua seed=1;',
    server  => 'location = /batched { learn_predict xor;
                                      learn_batch max=8 timeout=5s; }
                location = /status { learn_status; }',
)->start;

# a second client, idle on a keepalive connection: more requests could
# still come, so the batch waits for its timeout (with every connection
# in the batch it would go at once)
my $idle = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $srv->port)
    or die "connect: $!";
print $idle "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
my ($idle_reply) = read_for($idle, 2);
like($idle_reply // '', qr/^HTTP\/1\.1 200/, 'an idle keepalive client is connected');

my $waiting = LearnClient::raw_post($srv, '/batched',
                                    '{"x": [[0, 1]]}', 'application/json');
# one worker: the status request is answered after the predict was read
# and queued
is(status($srv, 'xor')->{predicts}, 0, 'the batched predict waits in its queue');
my ($got) = read_for($waiting, 0.05);
is($got, '', 'and has no answer yet');

my @pids = ($srv->pid, $srv->workers);
my $t0 = time;
kill 'QUIT', $srv->pid;
my ($reply, $closed) = read_for($waiting, 8);
my $answered_in = time - $t0;
ok($closed, sprintf('the client saw its connection end (%.2f s)', $answered_in));
like($reply, qr/^(|HTTP\/1\.1 200 .*"y".*)$/s,
     'with an answer or nothing, not a broken one');
my $took = wait_exit($srv, \@pids, 10);
ok(defined $took, 'nginx exited');
cmp_ok($took // 99, '<', 4,
       'before the 5 s batch timeout: the request left the queue when it ended');
my @bad = bad_lines($srv);
is(scalar @bad, 0, 'no crash, no alert in error.log') or diag(@bad);
unlink "$srv->{prefix}/logs/nginx.pid";


# 2. a train request waiting for the train lock (held by a pool thread's
# long step) when the worker shuts down

$srv = LearnServer->new(
    name    => 'lifetime-lock',
    workers => 1,
    main    => 'thread_pool learn threads=1; worker_shutdown_timeout 300ms;',
    http    => "learn_model wide $dir/wide.lua seed=1;
                learn_max_elements 64m;
                client_body_buffer_size 64k;",
    server  => 'location = /train-pool { learn_thread_pool learn threshold=0;
                                         learn_train wide; }
                location = /train { learn_train wide; }
                location = /status { learn_status; }',
)->start;

# rows for a step of about 2.5 s here, from one measured step
my $client = LearnClient->new;
my $r = $client->post($srv->url('/train-pool'),
                      { content => wide_body(64) });
$t0 = time;
$r = $client->post($srv->url('/train-pool'), { content => wide_body(256) });
my $per_row = (time - $t0) / 256;
is($r->{status}, 200, 'a step on the pool');
my $rows = int(2.5 / $per_row);
$rows = 16 if $rows < 16;
note(sprintf('%.2f ms per row: %d rows', $per_row * 1000, $rows));

my $long = LearnClient::raw_post($srv, '/train-pool', wide_body($rows));
# a short step on the event loop finds the lock busy once the pool
# thread has taken it (until then it gets the lock and its answer: again)
my ($parked, $answered, $tries) = (undef, 0, 0);
while (!$parked && $tries++ < 20) {
    my $s = LearnClient::raw_post($srv, '/train', wide_body(1));
    ($got) = read_for($s, 0.3);
    if ($got eq '') {
        $parked = $s;
    } else {
        $answered++;
        like($got, qr/^HTTP\/1\.1 200/, 'a short step before the long one took the lock');
    }
}
ok($parked, "a short train request waits for the lock ($answered answered before)");
my $st = status($srv, 'wide');
is($st->{trains}, 2 + $answered, 'the long step and the waiting one are not answered');

@pids = ($srv->pid, $srv->workers);
kill 'QUIT', $srv->pid;
($reply, $closed) = read_for($parked, 10);
ok($closed, 'the waiting request ended');
unlike($reply, qr/^HTTP\/1\.1 200/,
       'without a step: it was ended while it waited (the long step outlived the shutdown timeout)');
like($reply, qr/^(|HTTP\/1\.1 \d+ .*)$/s, 'and without a broken answer');
my ($long_reply) = read_for($long, 10);
like($long_reply, qr/^(|HTTP\/1\.1 200 .*"step".*)$/s,
     'the long step answers or ends cleanly');
$took = wait_exit($srv, \@pids, 20);
ok(defined $took, sprintf('nginx exited (%.2f s)', $took // -1));
@bad = bad_lines($srv);
is(scalar @bad, 0, 'no crash, no alert in error.log') or diag(@bad);
unlink "$srv->{prefix}/logs/nginx.pid";


# 3. a reload in the middle of concurrent train requests on the thread
# pool: every request gets an answer, and the step counter equals the
# number of 200 answers

if (LearnValgrind::heavy('section 3, 48 steps of the wide model through a reload')) {
    done_testing();
    exit 0;
}

$srv = LearnServer->new(
    name    => 'lifetime-reload',
    workers => 2,
    main    => 'thread_pool learn threads=2;',
    http    => "learn_model wide $dir/wide.lua seed=1;
                learn_max_elements 64m;",
    server  => 'location = /train { learn_thread_pool learn threshold=0;
                                    learn_train wide; }
                location = /status { learn_status; }',
)->start;

my $clients = 6;
my $each = 8;
my $body = wide_body(64);
my @kids;
for my $c (1 .. $clients) {
    my $pid = fork // die;
    if ($pid == 0) {
        my %codes;
        for (1 .. $each) {
            my $s = LearnClient::raw_post($srv, '/train', $body);
            my ($res, $end) = read_for($s, 30);
            my ($code) = $res =~ /^HTTP\/1\.1 (\d+)/;
            $codes{$code // ($end ? 'closed' : 'timeout')}++;
            close $s;
        }
        open my $out, '>', "$srv->{prefix}/codes.$c" or die;
        print $out join(' ', map { "$_=$codes{$_}" } sort keys %codes);
        close $out;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}

# reload once the first steps were answered, while the rest are in flight
my $deadline = time + 20;
sleep 0.01 until (status($srv, 'wide')->{trains} // 0) >= 3 || time > $deadline;
my $at_reload = status($srv, 'wide')->{trains};
$srv->reload;
cmp_ok($at_reload, '<', $clients * $each - $clients,
       "the reload came with requests still to come ($at_reload answered)");
waitpid $_, 0 for @kids;

my %codes;
for my $c (1 .. $clients) {
    open my $in, '<', "$srv->{prefix}/codes.$c" or die;
    for (split ' ', scalar <$in>) {
        my ($k, $v) = split /=/;
        $codes{$k} += $v;
    }
}
is($codes{200} // 0, $clients * $each,
   'every train request sent got a 200 answer')
    or diag(explain \%codes);
$st = status($srv, 'wide');
is($st->{step}, $codes{200} // 0,
   "the step counter ($st->{step}) equals the 200 answers");
$srv->stop;
@bad = bad_lines($srv);
is(scalar @bad, 0, 'no crash, no alert in error.log') or diag(@bad);

done_testing();
