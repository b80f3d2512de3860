# device=cuda: models on a GPU, the zone still the source of truth.
#
# Where there is no GPU the device path runs against build/fake-cuda/,
# a stand-in backend (t/device/fake_cuda.c: the CPU's arithmetic behind
# "device" buffers that start as NaN), so the per-worker copies, their
# refresh when another worker or a weights import moves the zone, the
# write-back of parameters and Adam state, the thread pool and batching
# are checked against a CPU twin of the model everywhere.  The real
# backend (build/ngx_http_learn_cuda.so, built where nvcc is) is then
# checked for what a machine without a GPU must do (fall back with one
# warning, or refuse with fallback=off), and on a GPU for matching the
# CPU to 1e-4.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd qw(abs_path);
use Time::HiRes qw(time sleep);
use File::Basename qw(dirname);
use LearnServer;
use LearnClient;
use LearnBody;

my $root = abs_path(dirname(__FILE__) . '/..');
my $fake = "$root/build/fake-cuda/ngx_http_learn_cuda.so";
my $real = "$root/build/ngx_http_learn_cuda.so";
my $gpu = -e '/dev/nvidiactl' && -e '/dev/nvidia0';

plan skip_all => "$fake is not built (make)" unless -f $fake;

my $json = { 'Content-Type' => 'application/json' };
srand(7);

sub digits_batch {    # 8 samples of 64 features, class indices
    my $x = [ map { [ map { sprintf('%.4f', rand()) + 0 } 1 .. 64 ] } 1 .. 8 ];
    my $y = [ map { int(rand(10)) } 1 .. 8 ];
    return ($x, $y);
}

sub post_json_tensor {
    my ($client, $url, $data) = @_;
    my $r = $client->post($url, { headers => $json,
                                  content => JSON::PP->new->encode($data) });
    return ($r->{status}, $r->{status} == 200 ? json_decode($r->{content})
                                              : $r->{content},
            $r->{headers}{'x-pid'});
}

sub max_diff {
    my ($a, $b) = @_;
    my $worst = 0;
    for my $i (0 .. $#$a) {
        my @ra = ref $a->[$i] ? @{ $a->[$i] } : ($a->[$i]);
        my @rb = ref $b->[$i] ? @{ $b->[$i] } : ($b->[$i]);
        for my $j (0 .. $#ra) {
            my $d = abs($ra[$j] - $rb[$j]);
            $worst = $d if $d > $worst;
        }
    }
    return $worst;
}

sub status_of {
    my ($client, $srv, $model) = @_;
    return json_decode($client->get($srv->url('/status'))->{content})
               ->{models}{$model};
}

sub count_lines {
    my ($file, $re) = @_;
    open my $fh, '<', $file or return 0;
    return scalar grep { /$re/ } <$fh>;
}

# workers log while they start, maybe after the first answer of another
sub count_lines_after_start {
    my ($srv, $re) = @_;
    my $deadline = time + 10;
    sleep 0.05 while count_lines($srv->error_log, $re) == 0 && time < $deadline;
    sleep 0.2;
    return count_lines($srv->error_log, $re);
}

sub locations {    # train, predict and weights for each model named
    return join "\n", map {
        "location = /$_/train { learn_train $_; add_header X-Pid \$pid; }
         location = /$_/predict { learn_predict $_; add_header X-Pid \$pid; }
         location = /$_/weights { learn_weights $_; }"
    } @_;
}

# -- 1. two workers, one model on the (fake) device, one CPU twin --------

my $srv = LearnServer->new(name => 'device', workers => 2,
    main   => 'thread_pool learn threads=2;',
    http   => "learn_cuda_library $fake;
               learn_model gd models/digits.lua seed=5 device=cuda;
               learn_model cd models/digits.lua seed=5;
               learn_model fd models/digits.lua seed=5 device=cuda:1;
               learn_model cf models/digits.lua seed=5;",
    server => locations(qw(gd cd fd cf)) . '
               location = /gd/pool/train {
                   learn_thread_pool learn threshold=0; learn_train gd; }
               location = /gd/pool/predict {
                   learn_thread_pool learn threshold=0; learn_predict gd; }
               location = /status { learn_status; }',
)->start;

# fresh connections land on either worker: each step and predict of gd
# then needs the device copy of the worker that serves it to be current
my @clients = map { LearnClient->new } 1 .. 4;
my (%pids, @gd_loss, @cd_loss, $worst_y, $bad);
$worst_y = 0;
$bad = 0;

for my $i (1 .. 40) {
    my ($x, $y) = digits_batch();
    my $c = $clients[$i % 4];
    my $where = ($i % 5 == 0) ? '/gd/pool/train' : '/gd/train';
    my ($s1, $g, $pid) = post_json_tensor($c, $srv->url($where), { x => $x, y => $y });
    my ($s2, $r) = post_json_tensor($c, $srv->url('/cd/train'), { x => $x, y => $y });
    $bad++ if $s1 != 200 || $s2 != 200;
    $pids{$pid}++ if $pid;
    push @gd_loss, $g->{loss} // 'nan';
    push @cd_loss, $r->{loss} // 'nan';

    my ($px) = digits_batch();
    my $pwhere = ($i % 3 == 0) ? '/gd/pool/predict' : '/gd/predict';
    my (undef, $gp) = post_json_tensor($clients[($i + 1) % 4], $srv->url($pwhere),
                                { x => $px });
    my (undef, $cp) = post_json_tensor($clients[($i + 2) % 4],
                                $srv->url('/cd/predict'), { x => $px });
    my $d = (ref $gp && ref $cp) ? max_diff($gp->{y}, $cp->{y}) : 1e9;
    $worst_y = $d if $d > $worst_y;
    # the connections drift between workers
    delete $clients[$i % 4]{conn} if $i % 2;
}

is($bad, 0, 'every train request answered 200');
cmp_ok(scalar keys %pids, '==', 2, 'both workers trained the device model')
    or diag explain \%pids;
cmp_ok(max_diff(\@gd_loss, \@cd_loss), '<', 1e-5,
       'device losses equal the CPU twin\'s, step after step');
cmp_ok($worst_y, '<', 1e-5, "device predicts equal the CPU twin's ($worst_y)");

my $c = LearnClient->new;
my $gd = status_of($c, $srv, 'gd');
my $cd = status_of($c, $srv, 'cd');
is($gd->{device}, 'cuda:0', 'learn_status: gd runs on cuda:0');
is($cd->{device}, 'cpu', 'learn_status: cd runs on the CPU');
is($gd->{step}, 40, 'gd applied 40 steps');
is($gd->{device_steps}, 40, 'all 40 on the device');
cmp_ok($gd->{device_predicts}, '>=', 40, 'predicts on the device');
is($cd->{device_steps}, 0, 'none of the twin\'s');

my $gw = mp_unpack($c->get($srv->url('/gd/weights'))->{content});
my $cw = mp_unpack($c->get($srv->url('/cd/weights'))->{content});
my $wd = 0;
for my $k (keys %$cw) {
    my @a = unpack 'f<*', $cw->{$k}{data};
    my @b = unpack 'f<*', $gw->{$k}{data};
    for my $j (0 .. $#a) { my $d = abs($a[$j] - $b[$j]); $wd = $d if $d > $wd }
}
cmp_ok($wd, '<', 1e-6, 'the zone holds the device\'s parameters');

# a weights import moves the zone: the device copies must follow
my ($x, $y) = digits_batch();
post_json_tensor($c, $srv->url('/cd/train'), { x => $x, y => $y }) for 1 .. 3;
my $export = $c->get($srv->url('/cd/weights'))->{content};
my $put = $c->request('PUT', $srv->url('/gd/weights'),
    { headers => { 'Content-Type' => 'application/msgpack' },
      content => $export });
is($put->{status}, 200, 'weights PUT into the device model');
my ($px) = digits_batch();
my $imported = 1;
for my $k (0 .. 3) {
    my (undef, $gp) = post_json_tensor(LearnClient->new, $srv->url('/gd/predict'),
                                { x => $px });
    my (undef, $cp) = post_json_tensor(LearnClient->new, $srv->url('/cd/predict'),
                                { x => $px });
    $imported = 0 unless max_diff($gp->{y}, $cp->{y}) < 1e-5;
}
ok($imported, 'predicts in both workers use the imported weights');

# a device that fails after 3 updates: the steps go on, on the CPU
my (@fd_loss, @cf_loss);
$bad = 0;
for my $i (1 .. 12) {
    ($x, $y) = digits_batch();
    my $cl = LearnClient->new;
    my ($s1, $f) = post_json_tensor($cl, $srv->url('/fd/train'), { x => $x, y => $y });
    my ($s2, $r) = post_json_tensor($cl, $srv->url('/cf/train'), { x => $x, y => $y });
    $bad++ if $s1 != 200 || $s2 != 200;
    push @fd_loss, $f->{loss} // 'nan';
    push @cf_loss, $r->{loss} // 'nan';
}
is($bad, 0, 'a failing device loses no train request');
cmp_ok(max_diff(\@fd_loss, \@cf_loss), '<', 1e-5,
       'after the failure the CPU continues from the zone');
my $fd = status_of($c, $srv, 'fd');
is($fd->{step}, 12, 'every step counted once');
cmp_ok($fd->{device_steps}, '<=', 6, "$fd->{device_steps} steps on the device"
       . ' (3 per worker before it failed)');
cmp_ok(count_lines($srv->error_log,
                   qr/\[alert\].*learn_model "fd": cuda:1 failed in a step/),
       '>=', 1, 'the failure is logged at alert');
$srv->stop;

# -- 2. batching on the device, one worker ------------------------------

$srv = LearnServer->new(name => 'device-batch', workers => 1,
    http   => "learn_cuda_library $fake;
               learn_model gd models/digits.lua seed=5 device=cuda;
               learn_model cd models/digits.lua seed=5;",
    server => locations(qw(gd cd)) . '
               location = /gd/batched {
                   learn_predict gd; learn_batch max=16 timeout=30ms; }
               location = /status { learn_status; }',
)->start;
$c = LearnClient->new;
my @xs = map { [ (digits_batch())[0][0] ] } 1 .. 12;
my @alone = map { (post_json_tensor($c, $srv->url('/cd/predict'), { x => $_ }))[1]{y} }
            @xs;
my @socks = map { LearnClient::raw_post($srv, '/gd/batched',
                                   JSON::PP->new->encode({ x => $_ }),
                                   'application/json') }
            @xs;
my @batched = map {
    local $/;
    my $r = readline($_) // '';
    my ($body) = $r =~ /\r\n\r\n(.*)$/s;
    $body ? json_decode($body)->{y} : [[1e9]];
} @socks;
my $bw = 0;
for my $i (0 .. $#xs) {
    my $d = max_diff($alone[$i], $batched[$i]);
    $bw = $d if $d > $bw;
}
cmp_ok($bw, '<', 1e-5, "device batches answer as the CPU alone ($bw)");
$gd = status_of($c, $srv, 'gd');
cmp_ok($gd->{batches}, '>=', 1, "$gd->{batched_predicts} predicts in "
       . "$gd->{batches} batches");
cmp_ok($gd->{device_predicts}, '>=', $gd->{batches}, 'batches ran on the device');
$srv->stop;

# -- 2b. a convolutional net on the device, with buffers -----------------
#
# Conv2d, BatchNorm2d (running statistics: buffers the device writes back
# with the parameters), MaxPool2d, Dropout (the mask of the step's seed),
# LayerNorm and GELU, beside a CPU twin; two workers, so each step needs
# the serving worker's device copy to be current, buffers included.

my $cnn = "$root/t/device/cnn.lua";
$srv = LearnServer->new(name => 'device-cnn', workers => 2,
    http   => "learn_cuda_library $fake;
               learn_model gn $cnn seed=3 device=cuda;
               learn_model cn $cnn seed=3;",
    server => locations(qw(gn cn)) . '
               location = /status { learn_status; }',
)->start;

sub image_batch {    # 8 images [1, 8, 8], class indices
    my ($x, $y) = digits_batch();
    return ([ map { my $r = $_; [ [ map { [ @$r[8 * $_ .. 8 * $_ + 7] ] } 0 .. 7 ] ] }
              @$x ], $y);
}

my (@gn_loss, @cn_loss);
$bad = 0;
$worst_y = 0;
for my $i (1 .. 16) {
    my ($x, $y) = image_batch();
    my $cl = LearnClient->new;
    my ($s1, $g) = post_json_tensor($cl, $srv->url('/gn/train'), { x => $x, y => $y });
    my ($s2, $r) = post_json_tensor($cl, $srv->url('/cn/train'), { x => $x, y => $y });
    $bad++ if $s1 != 200 || $s2 != 200;
    push @gn_loss, ref $g ? $g->{loss} : 'nan';
    push @cn_loss, ref $r ? $r->{loss} : 'nan';
    diag("gn: $s1 $g") if $s1 != 200 && $bad == 1;

    my ($px) = image_batch();
    my (undef, $gp) = post_json_tensor(LearnClient->new, $srv->url('/gn/predict'),
                                       { x => $px });
    my (undef, $cp) = post_json_tensor(LearnClient->new, $srv->url('/cn/predict'),
                                       { x => $px });
    my $d = (ref $gp && ref $cp) ? max_diff($gp->{y}, $cp->{y}) : 1e9;
    $worst_y = $d if $d > $worst_y;
}
is($bad, 0, 'a CNN trains on the device: every request answered 200');
cmp_ok(max_diff(\@gn_loss, \@cn_loss), '<', 1e-5,
       'its losses equal the CPU twin\'s, Dropout and BatchNorm included');
cmp_ok($worst_y, '<', 1e-5, "its predicts (running statistics) equal the twin's ($worst_y)");
$c = LearnClient->new;
$gd = status_of($c, $srv, 'gn');
is($gd->{device}, 'cuda:0', 'the CNN runs on cuda:0');
is($gd->{device_steps}, 16, 'all 16 steps on the device');
$gw = mp_unpack($c->get($srv->url('/gn/weights'))->{content});
$cw = mp_unpack($c->get($srv->url('/cn/weights'))->{content});
$wd = 0;
for my $k (keys %$cw) {
    my @a = unpack 'f<*', $cw->{$k}{data};
    my @b = unpack 'f<*', ($gw->{$k}{data} // '');
    $wd = 1e9 if @a != @b;
    for my $j (0 .. $#a) { my $d = abs($a[$j] - $b[$j]); $wd = $d if $d > $wd }
}
ok(exists $gw->{'1.running_mean'} && exists $gw->{'1.num_batches_tracked'},
   'the device model exports BatchNorm\'s buffers');
cmp_ok($wd, '<', 1e-6, 'the zone holds the device\'s parameters and buffers');
$srv->stop;

# -- 3. no usable device: fall back with one warning, or refuse -----------

$srv = LearnServer->new(name => 'device-none', workers => 2,
    http   => 'learn_cuda_library /nonexistent/ngx_http_learn_cuda.so;
               learn_model gd models/digits.lua seed=5 device=cuda;',
    server => locations('gd') . ' location = /status { learn_status; }',
)->start;
$c = LearnClient->new;
($x, $y) = digits_batch();
my ($st) = post_json_tensor($c, $srv->url('/gd/train'), { x => $x, y => $y });
is($st, 200, 'without the backend the model trains on the CPU');
is(status_of($c, $srv, 'gd')->{device}, 'cpu', 'learn_status says cpu');
is(count_lines_after_start($srv,
               qr/\[warn\].*"gd": device=cuda:0 is not usable \(the CUDA backend did not load/),
   1, 'one warning line for two workers');
$srv->stop;

$srv->set_http('learn_cuda_library /nonexistent/ngx_http_learn_cuda.so;
               learn_model gd models/digits.lua seed=5 device=cuda fallback=off;');
my ($rc, $out) = $srv->test_config;
isnt($rc, 0, 'fallback=off without the backend: nginx -t fails');
like($out, qr/learn_model "gd": device=cuda:0 with fallback=off, but the CUDA backend did not load/,
     'and says why');

$srv->set_http("learn_cuda_library $fake;
               learn_model gd models/digits.lua seed=5 device=cuda:7 fallback=off;");
($rc, $out) = $srv->test_config;
isnt($rc, 0, 'fallback=off with no such device: nginx -t fails');
like($out, qr/device=cuda:7 with fallback=off, but no CUDA device 7/, 'and names it');

$srv->set_http("learn_cuda_library $fake;
               learn_model gd models/digits.lua seed=5 device=cuda:1 fallback=off;");
($rc, $out) = $srv->test_config;
is($rc, 0, 'fallback=off with a device that opens: nginx -t passes') or diag $out;

for my $bad_dev ('tpu', 'cuda:x', 'cuda:99') {
    $srv->set_http("learn_model gd models/digits.lua device=$bad_dev;");
    ($rc, $out) = $srv->test_config;
    like($out, qr/device "\Q$bad_dev\E" is not "cpu", "cuda" or "cuda:N"/,
         "device=$bad_dev is refused");
}

# -- 4. the real backend --------------------------------------------------

SKIP: {
    skip "$real is not built (no nvcc)", 6 unless -f $real;

    if (!$gpu) {
        $srv = LearnServer->new(name => 'device-real', workers => 2,
            http   => 'learn_model gd models/digits.lua seed=5 device=cuda;',
            server => locations('gd') . ' location = /status { learn_status; }',
        )->start;
        $c = LearnClient->new;
        ($x, $y) = digits_batch();
        ($st) = post_json_tensor($c, $srv->url('/gd/train'), { x => $x, y => $y });
        is($st, 200, 'no GPU: the model trains on the CPU');
        is(status_of($c, $srv, 'gd')->{device}, 'cpu', 'learn_status says cpu');
        is(count_lines_after_start($srv,
                       qr/\[warn\].*"gd": device=cuda:0 is not usable \(no CUDA device/),
           1, 'one warning naming the missing device');
        $srv->stop;

        $srv->set_http('learn_model gd models/digits.lua seed=5 device=cuda fallback=off;');
        ($rc, $out) = $srv->test_config;
        isnt($rc, 0, 'no GPU, fallback=off: nginx -t fails');
        like($out, qr/device=cuda:0 with fallback=off, but no CUDA device/,
             'and says there is no CUDA device');
        pass('no GPU here: the GPU comparison runs where there is one');
        last SKIP;
    }

    $srv = LearnServer->new(name => 'device-gpu', workers => 2,
        http   => 'learn_model gd models/digits.lua seed=5 device=cuda fallback=off;
                   learn_model cd models/digits.lua seed=5;',
        server => locations(qw(gd cd)) . ' location = /status { learn_status; }',
    )->start;
    $c = LearnClient->new;
    (@gd_loss, @cd_loss) = ();
    my $worst = 0;
    for my $i (1 .. 30) {
        ($x, $y) = digits_batch();
        my (undef, $g) = post_json_tensor(LearnClient->new, $srv->url('/gd/train'),
                                   { x => $x, y => $y });
        my (undef, $r) = post_json_tensor($c, $srv->url('/cd/train'), { x => $x, y => $y });
        push @gd_loss, $g->{loss};
        push @cd_loss, $r->{loss};
        my (undef, $gp) = post_json_tensor(LearnClient->new, $srv->url('/gd/predict'),
                                    { x => $x });
        my (undef, $cp) = post_json_tensor($c, $srv->url('/cd/predict'), { x => $x });
        my $d = max_diff($gp->{y}, $cp->{y});
        $worst = $d if $d > $worst;
    }
    $gd = status_of($c, $srv, 'gd');
    is($gd->{device}, 'cuda:0', 'on the GPU');
    is($gd->{device_steps}, 30, 'every step on the GPU');
    cmp_ok(max_diff(\@gd_loss, \@cd_loss), '<', 1e-4, 'GPU losses match the CPU');
    cmp_ok($worst, '<', 1e-4, "GPU predicts match the CPU ($worst)");
    cmp_ok($gd->{device_predicts}, '>=', 30, 'predicts on the GPU');
    is(count_lines($srv->error_log, qr/\[(alert|crit|emerg)\]/), 0,
       'no device failure logged');
    $srv->stop;
}

done_testing();
