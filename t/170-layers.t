# Layers beyond MLPs over HTTP: a PyTorch-trained CNN (nested Sequential,
# Conv2d, BatchNorm2d with its buffers, MaxPool2d, AdaptiveAvgPool2d,
# Dropout, Linear) loads through learn_weights as PyTorch saved it and
# predicts what PyTorch predicts; the same CNN trained here from scratch
# reaches a stated accuracy; shapes are checked against the net's.
# Fixtures: t/fixtures/gen_cnn.py (PyTorch; not needed to run this).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use LearnServer;
use LearnBody;

my $srv = LearnServer->new(
    name    => 'layers',
    workers => 2,
    http    => 'learn_model torch models/digits_cnn.lua seed=1;
                learn_model fresh models/digits_cnn.lua seed=2;
                learn_model lenet models/lenet.lua seed=3;',
    server  => 'location = /torch/predict { learn_predict torch; }
                location = /torch/weights { learn_weights torch; }
                location = /fresh/train { learn_train fresh; }
                location = /fresh/predict { learn_predict fresh; }
                location = /lenet/train { learn_train lenet; }
                location = /lenet/predict { learn_predict lenet; }',
)->start;

my $http = LearnClient->new;
my $expected = json_decode(fixture('cnn_torch_expected.json'));
my $json = { headers => { 'Content-Type' => 'application/json',
                          Accept => 'application/json' } };

sub predict {
    my ($model, $x) = @_;
    my $r = $http->post($srv->url("/$model/predict"), {
        %$json, content => JSON::PP->new->encode({ x => $x }) });
    return ($r->{status}, json_decode($r->{content}));
}

sub shape_of {
    my ($v) = @_;
    my @s;
    while (ref $v eq 'ARRAY') {
        push @s, scalar @$v;
        $v = $v->[0];
    }
    return \@s;
}

# -- GET: PyTorch's state-dict names and shapes, buffers included ----------

my $w = json_decode($http->get($srv->url('/torch/weights'),
    { headers => { Accept => 'application/json' } })->{content});
is_deeply([sort keys %$w], [sort @{ $expected->{names} }],
          "GET names every parameter and buffer as PyTorch's state_dict");
my $same = 1;
for my $i (0 .. $#{ $expected->{names} }) {
    my $name = $expected->{names}[$i];
    $same &&= join(',', @{ shape_of($w->{$name}) })
              eq join(',', @{ $expected->{shapes}[$i] });
}
ok($same, 'with their shapes ([8, 1, 3, 3], [8], ..., a scalar count)');
is($w->{'0.1.num_batches_tracked'}, 0, 'no batch tracked yet');
is_deeply($w->{'0.1.running_var'}, [(1) x 8], 'running_var starts at 1');

my $r = $http->request('PUT', $srv->url('/torch/weights'), {
    headers => { 'Content-Type' => 'application/json' },
    content => JSON::PP->new->encode($w) });
is($r->{status}, 200, 'what GET gave (JSON, a bare number for the count) '
   . 'PUTs back') or diag($r->{content});

# -- PUT a PyTorch state_dict as msgpack_numpy wrote it -------------------

$r = $http->request('PUT', $srv->url('/torch/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('cnn_torch_state.mp') });
is($r->{status}, 200, "PyTorch's state_dict loads as it is")
    or diag($r->{content});

my ($status, $out) = predict('torch', $expected->{x});
is($status, 200, 'predicts [16, 1, 8, 8]');
my $worst = 0;
for my $i (0 .. 15) {
    for my $j (0 .. 9) {
        my $d = abs($out->{y}[$i][$j] - $expected->{y}[$i][$j]);
        $worst = $d if $d > $worst;
    }
}
cmp_ok($worst, '<', 1e-4,
       "and predicts what PyTorch predicts in eval mode (max diff $worst)");

my (undef, $again) = predict('torch', $expected->{x});
is_deeply($again, $out, 'predicts are deterministic (Dropout is off)');

# one unbatched sample [1, 8, 8] gives one unbatched output [10]
($status, $out) = predict('torch', $expected->{x}[0]);
is($status, 200, 'one sample without N');
is(scalar @{ $out->{y} }, 10, 'gives ten outputs');

my $m = mp_unpack($http->get($srv->url('/torch/weights'))->{content});
my $nbt = $m->{'0.1.num_batches_tracked'};
is($nbt->{type}, '<i8', 'num_batches_tracked exports as int64');
is_deeply($nbt->{shape}, [], 'a scalar');
is(unpack('q<', $nbt->{data}), $expected->{num_batches_tracked},
   "holding PyTorch's count");

# -- shapes ----------------------------------------------------------------

($status, $out) = predict('torch', [ map { [ (0) x 64 ] } 1 .. 2 ]);
is($status, 400, 'flat [2, 64] is refused');
like($out->{error}, qr/x has shape \[2, 64\], expected \[N, 1, 8, 8\]/,
     'naming the expected shape');

$r = $http->request('PUT', $srv->url('/torch/weights'), {
    headers => { 'Content-Type' => 'application/json' },
    content => JSON::PP->new->encode({ %$w, '0.1.num_batches_tracked' => 2.5 }),
});
is($r->{status}, 400, 'a count that is not a whole number is refused');
like(json_decode($r->{content})->{error},
     qr/^"0\.1\.num_batches_tracked" must hold whole numbers/, 'naming it');

# -- train the same CNN from scratch over HTTP ------------------------------

my $train = mp_unpack(fixture('cnn_train_np.mp'));
my $xb = $train->{x}{data};
my $yb = $train->{y}{data};
my $last;
for my $epoch (1 .. 3) {
    for (my $i = 0; $i < 512; $i += 32) {
        my $body = "\x82\xa1x"
                 . raw_tensor([32, 1, 8, 8], 'float32',
                              substr($xb, $i * 256, 32 * 256))
                 . "\xa1y"
                 . raw_tensor([32], 'int64', substr($yb, $i * 8, 32 * 8));
        $r = $http->post($srv->url('/fresh/train'), {
            headers => { 'Content-Type' => 'application/msgpack',
                         Accept => 'application/json' },
            content => $body });
        last if $r->{status} != 200;
        $last = json_decode($r->{content});
    }
}
is($r->{status}, 200, '48 train steps of batch 32') or diag($r->{content});
is($last->{step}, 48, 'counted');

my $test = mp_unpack(fixture('cnn_test_np.mp'));
my $labels = json_decode(fixture('cnn_test_y.json'));
$r = $http->post($srv->url('/fresh/predict'), {
    headers => { 'Content-Type' => 'application/msgpack',
                 Accept => 'application/json' },
    content => "\x81\xa1x" . raw_tensor([200, 1, 8, 8], 'float32',
                                         $test->{x}{data}) });
my $y = json_decode($r->{content})->{y};
my $right = 0;
for my $i (0 .. 199) {
    my ($best, $arg) = (-1e30, -1);
    for my $j (0 .. 9) {
        ($best, $arg) = ($y->[$i][$j], $j) if $y->[$i][$j] > $best;
    }
    $right++ if $arg == $labels->[$i];
}
my $acc = $right / 200;
cmp_ok($acc, '>=', 0.8, "trained here, it classifies held-out images "
       . "(accuracy $acc; PyTorch's twin: $expected->{accuracy})");

# -- LeNet-5 -------------------------------------------------------------

my $img = [ [ map { [ map { ($_ % 7) / 7 } 1 .. 28 ] } 1 .. 28 ] ];
($status, $out) = predict('lenet', [ $img, $img ]);
is($status, 200, 'LeNet-5 predicts [2, 1, 28, 28]');
is_deeply(shape_of($out->{y}), [2, 10], 'into [2, 10]');

my @loss;
for my $step (1 .. 15) {
    $r = $http->post($srv->url('/lenet/train'), {
        %$json, content => JSON::PP->new->encode({ x => [ $img, $img ],
                                                   y => [ 3, 3 ] }) });
    push @loss, json_decode($r->{content})->{loss};
}
cmp_ok($loss[-1], '<', $loss[0] / 2, "LeNet-5 trains (loss $loss[0] -> "
       . "$loss[-1])");

$srv->stop;

# -- device=cuda takes every layer (the CUDA backend has their ops) -------
#
# (t/110-device.t trains a CNN on the stand-in device beside a CPU twin.)

$srv->set_http('learn_model torch models/digits_cnn.lua seed=1 device=cuda '
               . 'fallback=cpu;
                learn_model fresh models/digits_cnn.lua seed=2;
                learn_model lenet models/lenet.lua seed=3 device=cuda;');
my ($rc, $msg) = $srv->test_config;
is($rc, 0, 'device=cuda with Conv2d, BatchNorm2d and pools passes nginx -t')
    or diag $msg;
unlike($msg, qr/does not run layer/, 'no layer is refused');

done_testing();
