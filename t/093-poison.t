# A valid train request whose step would make the model NaN or Inf is
# refused (422) and changes nothing: not the parameters, not the
# optimizer state, not the step, not the checkpoint.  A weights import
# starts the optimizer state over.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use LearnServer;
use LearnBody;
use Cwd ();
use File::Path ();

my $jp = JSON::PP->new->canonical;

# Linear(2, 1) with Adam: the smallest net whose second moment can
# overflow on a finite loss
my $dir = Cwd::abs_path('t') . '/servroot-poison-models';
File::Path::make_path($dir);
open my $fh, '>', "$dir/lin.lua" or die $!;
print $fh <<'_LUA_';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 1)),
    loss = nn.MSELoss(),
    optim = nn.Adam { lr = 0.01 },
}
_LUA_
close $fh;

our $srv = LearnServer->new(
    name    => 'poison',
    workers => 2,
    main    => 'thread_pool learn_pool threads=2;',
    http    => "learn_model xor models/xor.lua seed=1
                    checkpoint=state/xor.ckpt checkpoint_interval=100ms;
                learn_model lin $dir/lin.lua seed=2;",
    server  => 'location = /xor/train { learn_train xor; }
                location = /xor/train-pool { learn_train xor;
                    learn_thread_pool learn_pool threshold=0; }
                location = /xor/predict { learn_predict xor; }
                location = /xor/weights { learn_weights xor; }
                location = /lin/train { learn_train lin; }
                location = /lin/weights { learn_weights lin; }
                location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;

sub post {
    my ($path, $body) = @_;
    my $r = $http->post($srv->url($path), {
        headers => { 'Content-Type' => 'application/json' },
        content => $jp->encode($body),
    });
    return ($r->{status}, eval { json_decode($r->{content}) } || {});
}

sub status { json_decode($http->get($srv->url('/status'))->{content})
                 ->{models}{$_[0]} }

sub weights {
    return json_decode($http->get($srv->url("/$_[0]/weights"),
        { headers => { Accept => 'application/json' } })->{content});
}

# 1. a target of 3e38: the loss overflows
my $w0 = weights('xor');
my ($code, $r) = post('/xor/train', { x => [[0, 1]], y => [[3e38]] });
is($code, 422, 'y = 3e38: 422');
like($r->{error}, qr/loss of this batch is infinite: the step was not applied, the model is unchanged/,
     'the message says why and that nothing changed');
is_deeply(weights('xor'), $w0, 'the parameters are unchanged');
is(status('xor')->{step}, 0, 'the step did not move');
is(status('xor')->{rejected_steps}, 1, 'learn_status counts the rejected step');

($code) = post('/xor/train-pool', { x => [[0, 1]], y => [[3e38]] });
is($code, 422, 'on the thread pool too');
is(status('xor')->{rejected_steps}, 2, 'counted');
is_deeply(weights('xor'), $w0, 'still unchanged');

($code, $r) = post('/xor/train', { x => [[0, 1]], y => [[1]] });
is($code, 200, 'a normal step afterwards is applied');
is($r->{step}, 1, 'as step 1');
($code, $r) = post('/xor/predict', { x => [[0, 1]] });
ok(defined $r->{y}[0][0], 'and predicts are numbers, not null');

# the checkpoint carries the applied step only, finite
$srv->wait_log(qr/checkpoint "[^"]*xor\.ckpt" written at step 1/, timeout => 10);
$srv->stop;
$srv->start(keep => 1);
is(status('xor')->{step}, 1, 'after a restart the checkpoint gives step 1');
is(status('xor')->{rejected_steps}, 0, 'counters are per run');

# 2. Adam: a finite loss whose squared gradient is Inf
my $l0 = weights('lin');
($code, $r) = post('/lin/train', { x => [[1e19, 0]], y => [[0]] });
is($code, 422, 'x = 1e19 into Adam: 422');
like($r->{error}, qr/the optimizer state of "0\.weight" non-finite/,
     'naming the optimizer state of 0.weight');
is_deeply(weights('lin'), $l0, 'nothing changed');

# the second moment stayed finite: every weight keeps learning
my $lr;
($code, $lr) = post('/lin/train', { x => [[1, 1]], y => [[5]] }) for 1 .. 3;
my $l1 = weights('lin');
ok($l1->{'0.weight'}[0][0] != $l0->{'0.weight'}[0][0]
   && $l1->{'0.weight'}[0][1] != $l0->{'0.weight'}[0][1],
   'both weights still move under later steps');

# 3. an import starts the optimizer state over: import, step, import the
# same weights, the same step: the same result
sub put_json {
    my ($path, $w) = @_;
    return $http->request('PUT', $srv->url($path), {
        headers => { 'Content-Type' => 'application/json' },
        content => $jp->encode($w),
    })->{status};
}

post('/lin/train', { x => [[1, 2]], y => [[3]] }) for 1 .. 5;
my $w = weights('lin');
is(put_json('/lin/weights', $w), 200, 'import');
post('/lin/train', { x => [[0.5, -1]], y => [[2]] });
my $p1 = weights('lin');
is(put_json('/lin/weights', $w), 200, 'the same import again');
post('/lin/train', { x => [[0.5, -1]], y => [[2]] });
my $p2 = weights('lin');
is_deeply($p2, $p1, 'the same step after the same import gives the same '
                  . 'weights: momentum and moments were reset');
isnt($jp->encode($p1), $jp->encode($w), 'and the step did change them');

done_testing();
