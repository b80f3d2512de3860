# Training over HTTP with the optimizers, losses, schedules and clipping
# after PyTorch's: the loss falls, learn_status follows the schedule step
# by step, a restart from the checkpoint continues the schedule where it
# stopped, and with device=cuda (a stand-in device backend) the whole
# model, schedule and all, runs on the device.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use LearnServer;
use LearnClient;
use LearnBody;

my $root = abs_path(dirname(__FILE__) . '/..');
my $dir = "$root/t/servroot-optim-models";
make_path($dir);

sub model_file {
    my ($name, $text) = @_;
    open my $fh, '>', "$dir/$name.lua" or die $!;
    print $fh "local nn = require \"learn.nn\"\n$text";
    close $fh;
    return "$dir/$name.lua";
}

# XOR with cross-entropy over two classes: AdamW with a linear warmup of 5
# steps and a cosine decay to 0.001 over 95, label smoothing and clipping
my $xor = model_file('xor_adamw', <<'EOF_LUA');
return nn.model {
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)),
    loss = nn.CrossEntropyLoss { label_smoothing = 0.05 },
    optim = nn.AdamW { lr = 0.05, weight_decay = 0.01 },
    schedule = nn.SequentialLR {
        schedulers = { nn.LinearLR { start_factor = 0.2, total_iters = 5 },
                       nn.CosineAnnealingLR { T_max = 95, eta_min = 0.001 } },
        milestones = { 5 } },
    clip_grad_norm = 1.0,
}
EOF_LUA

my $body = mp({ x => [[0, 0], [0, 1], [1, 0], [1, 1]], y => [0, 1, 1, 0] });

# the schedule of xor_adamw after t scheduler steps, as torch computes it
sub xor_lr {
    my ($t) = @_;
    return 0.05 * (0.2 + 0.8 * $t / 5) if $t < 5;
    my $e = $t - 5;
    return 0.001 + (0.05 - 0.001) * (1 + cos(3.141592653589793 * $e / 95)) / 2;
}

my $srv = LearnServer->new(name => 'optim-train', workers => 2,
    http   => "learn_model xor $xor seed=3 checkpoint=state/xor.ckpt;",
    server => 'location = /train { learn_train xor; }
               location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;

sub train {
    my $r = $http->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/msgpack' },
        content => $body,
    });
    return $r->{status} == 200 ? mp_unpack($r->{content}) : undef;
}

sub status {
    return json_decode($http->get($srv->url('/status'))->{content})
               ->{models}{xor};
}

sub close_to {
    my ($got, $want, $name) = @_;
    ok(defined $got && abs($got - $want) <= 1e-6 * abs($want) + 1e-9,
       $name) or diag("got " . ($got // 'undef') . ", expected $want");
}

close_to(status()->{lr}, xor_lr(0), 'before any step the lr is the warmup\'s first');

my (@loss, $bad);
for my $i (1 .. 60) {
    my $r = train();
    $bad++ unless $r && $r->{step} == $i;
    push @loss, $r ? $r->{loss} : 'nan';
    close_to(status()->{lr}, xor_lr($i), "after step $i the lr is the schedule's")
        if $i == 3 || $i == 5 || $i == 6 || $i == 40;
}
ok(!$bad, '60 steps answered in order');
cmp_ok($loss[-1], '<', $loss[0] / 2,
       "the loss fell from $loss[0] to $loss[-1]");

my $prom = $http->get($srv->url('/status?format=prometheus'))->{content};
like($prom, qr/^# TYPE learn_model_lr gauge\nlearn_model_lr\{model="xor"\} [0-9.e-]+$/m,
     'Prometheus lists learn_model_lr');

# a restart restores step, optimizer state and so the schedule
$srv->stop;
$srv->start(keep => 1);
is(status()->{step}, 60, 'the checkpoint restored step 60');
close_to(status()->{lr}, xor_lr(60), 'and the lr continues the schedule');
my $r = train();
is($r && $r->{step}, 61, 'the next step is 61');
close_to(status()->{lr}, xor_lr(61), 'and the schedule moved one step');
$srv->stop;

# -- device=cuda: the device backend has every loss, optimizer and
# clipping op (the real one's kernels mirror the CPU's; t/device/fake_cuda.c
# stands in for it here), so the whole model runs there, schedule and all;
# a backend that lacks an op is refused by name (t/unit/test_model_layers.c)

my $fake = "$root/build/fake-cuda/ngx_http_learn_cuda.so";

SKIP: {
    skip "$fake is not built (make)", 5 unless -f $fake;

    my $dev = LearnServer->new(name => 'optim-device', workers => 1,
        http   => "learn_cuda_library $fake;
                   learn_model xor $xor seed=3 device=cuda fallback=off;",
        server => 'location = /train { learn_train xor; }
                   location = /status { learn_status; }',
    )->start;
    my ($rc, $out) = $dev->test_config;
    is($rc, 0, 'AdamW, label smoothing and clipping pass nginx -t with '
       . 'device=cuda fallback=off') or diag($out);
    $srv = $dev;
    my $t;
    $t = train() for 1 .. 5;
    ok($t && $t->{step} == 5, 'five steps train on the device');
    is(status()->{device_steps}, 5, 'every one of them ran there');
    close_to(status()->{lr}, xor_lr(5), 'and the lr follows the schedule');
    ok($t && $t->{loss} > 0 && $t->{loss} < 10, 'with a finite loss');
    $dev->stop;
}

done_testing();
