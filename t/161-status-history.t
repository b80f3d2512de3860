# The loss history in the model's zone (learn_status JSON
# "loss_history"): every step's loss while it fits, then evenly spaced
# points (the spacing doubles when 512 are kept), the same from every
# worker, kept across reloads (also when only zone= changes), gone when
# the layers change; and the page's request rates.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(sleep);
use LearnClient;
use LearnServer;
use LearnBody;

my $model = 'learn_model xor models/xor.lua seed=1';
my $srv = LearnServer->new(
    name    => 'history',
    workers => 2,
    http    => "$model;",
    server  => 'location = /train { learn_train xor; }
                location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;
my %loss;    # step => loss, from the train answers

sub train {
    my ($n) = @_;
    for (1 .. $n) {
        my $r = $http->post($srv->url('/train'), {
            headers => { 'Content-Type' => 'application/json' },
            content => '{"x": [[0, 1], [1, 0], [1, 1]], "y": [[1], [1], [0]]}',
        });
        $r->{status} == 200 or die "train: $r->{status} $r->{content}";
        my $a = json_decode($r->{content});
        $loss{$a->{step}} = $a->{loss};
    }
}

# a new connection each time: either worker may answer
sub status {
    my $r = HTTP::Tiny->new->get($srv->url('/status'));
    $r->{status} == 200 or die "status: $r->{status}";
    return json_decode($r->{content})->{models}{xor};
}

sub close_to { abs($_[0] - $_[1]) <= 1e-6 * (1 + abs($_[1])) }

# the documented rule: the smallest power-of-two spacing that keeps at
# most 512 of the steps 1..S, and every multiple of it up to S
sub check_history {
    my ($name, $m) = @_;
    my $s = $m->{step};
    my $stride = 1;
    $stride *= 2 while int($s / $stride) > 512;
    my @want = map { $_ * $stride } 1 .. int($s / $stride);
    my @got = map { $_->[0] } @{ $m->{loss_history} };

    is($m->{loss_history_stride}, $stride, "$name: one point per $stride steps");
    is_deeply(\@got, \@want, "$name: the steps are every multiple of $stride up to $s")
        or diag("got @got[0 .. 5] ... @got[-3 .. -1]");
    cmp_ok(scalar @got, '<=', 512, "$name: at most 512 points");
    my @bad = grep { !close_to($_->[1], $loss{$_->[0]} // 'nan') }
              @{ $m->{loss_history} };
    is(scalar @bad, 0, "$name: each point's loss is the one its train answered")
        or diag(explain([ @bad[0 .. 2] ]));
}

my $m = status();
is_deeply($m->{loss_history}, [], 'no step: an empty history');
is($m->{loss_history_stride}, 1, '... kept one per step');

train(5);
check_history('5 steps', status());

train(1095);
$m = status();
is($m->{step}, 1100, '1100 steps');
check_history('1100 steps', $m);
is(scalar @{ $m->{loss_history} }, 275, '... 275 points (every 4th)');

my %seen;
for (1 .. 8) {
    $seen{ JSON::PP->new->canonical->encode(status()->{loss_history}) }++;
}
is(scalar keys %seen, 1, 'every answer (either worker) has the same history');

train(1000);
check_history('2100 steps', status());

# the last points of the curve are lower than the first: it is the run's shape
my @h = @{ status()->{loss_history} };
cmp_ok($h[-1][1], '<', $h[0][1], 'the curve goes down as XOR is learnt');

# a reload keeps the zone, and the history with it
my $before = status()->{loss_history};
$srv->reload;
is_deeply(status()->{loss_history}, $before, 'reload: the history is kept');
train(100);
check_history('reload, then 100 more steps', status());

# zone=SIZE: a new zone, into which the running one is copied
$before = status()->{loss_history};
my $from = $srv->log_size;
$srv->reload(http => "$model zone=4m;");
ok($srv->wait_log(qr/the zone size changed, the state moved/, from => $from),
   'zone=SIZE reload: the state moved to a new zone');
is_deeply(status()->{loss_history}, $before, '... the history with it');
train(3);
check_history('zone=SIZE reload, then 3 more steps', status());

# other layers: the model starts fresh, so does its curve
$srv->reload(http => 'learn_model xor models/digits.lua seed=1;');
$m = status();
is($m->{step}, 0, 'other layers: the model starts fresh');
is_deeply($m->{loss_history}, [], '... with an empty history');

$srv->stop;

# a checkpoint holds no history: a restart restores the step, and the
# curve starts again after it
my $ck = LearnServer->new(
    name    => 'history-ckpt',
    workers => 1,
    http    => "$model checkpoint=state/xor.ckpt checkpoint_interval=1h;",
    server  => 'location = /train { learn_train xor; }
                location = /status { learn_status; }',
)->start;
$srv = $ck;
$http = LearnClient->new;
train(7);
$ck->stop;
$ck->start(keep => 1);
$http = LearnClient->new;
$m = status();
is($m->{step}, 7, 'checkpoint: the restart restores step 7');
is_deeply($m->{loss_history}, [], '... and no history');
train(2);
is_deeply([ map { $_->[0] } @{ status()->{loss_history} } ], [8, 9],
          '... which starts again at step 8');
$ck->stop;

# rates: a look, requests, a look 1 s later (one worker, nothing else)
my $one = LearnServer->new(
    name    => 'history-rates',
    workers => 1,
    http    => "$model;",
    server  => 'location = /train { learn_train xor; }
                location = /status { learn_status; }',
)->start;
$srv = $one;
%loss = ();
$http = LearnClient->new;

my $page = HTTP::Tiny->new->get($one->url('/status?format=html'))->{content};
like($page, qr/class="rates note" data-window-ms="0"/, 'rates: none on the first look');
train(30);
sleep 1.2;
$page = HTTP::Tiny->new->get($one->url('/status?format=html'))->{content};
my ($window) = $page =~ /<table class="rates" data-window-ms="(\d+)">/;
ok($window && $window >= 1000 && $window < 5000, 'a look 1.2 s later has a window')
    or diag($window);
my ($rate) = $page =~ m{<td data-key="trains_per_s">([\d.e+-]+)</td>};
my $want = $window ? 30 / ($window / 1000) : 0;
ok(defined $rate && abs($rate - $want) <= 1e-5 * $want,
   "trains_per_s is the 30 trains over the window ($rate, $want)");
like($page, qr{<td data-key="predicts_per_s">0</td>}, 'predicts_per_s: none');

done_testing();
