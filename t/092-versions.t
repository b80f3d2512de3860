# Kept versions (checkpoint_keep): listed in learn_status, predicted with
# ?version=STEP, the oldest removed; learn_candidate sends its share of
# predicts to a version, counted per version.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use Time::HiRes qw(sleep);
use LearnServer;
use LearnBody;

my $predict = 'location = /predict {
                   learn_predict xor;
                   add_header X-Learn "$learn_version $learn_step";
               }';
my $srv = LearnServer->new(
    name    => 'versions',
    workers => 2,
    http    => 'learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt '
             . 'checkpoint_interval=1h checkpoint_keep=3;',
    server  => "location = /train { learn_train xor; }
                location = /status { learn_status; }
                location = /weights { learn_weights xor; }
                $predict",
)->start;

my $http = LearnClient->new;
my $x = '{"x": [[0, 1], [1, 1], [0.5, 0.5]]}';

sub train {
    my ($n) = @_;
    for (1 .. $n) {
        $http->post($srv->url('/train'), {
            headers => { 'Content-Type' => 'application/json' },
            content => '{"x": [[0, 1], [1, 1]], "y": [[1], [0]]}',
        })->{status} == 200 or die 'train failed';
    }
}

sub predict {
    my ($query) = @_;
    my $r = $http->post($srv->url('/predict' . ($query // '')), {
        headers => { 'Content-Type' => 'application/json' },
        content => $x,
    });
    return ($r->{status}, $r->{headers}{'x-learn-version'},
            $r->{status} == 200 ? json_decode($r->{content})->{y} : $r->{content});
}

sub status { json_decode($http->get($srv->url('/status'))->{content})->{models}{xor} }

# five checkpoints, at steps 10, 20, ..., 50: each graceful stop writes
# one (the interval is an hour); the newest three are kept
for my $i (1 .. 5) {
    train(10);
    $srv->stop;
    $srv->start(keep => 1);
    $http = LearnClient->new;
}
my $r;
my @steps = map { $_->{step} } @{ status()->{versions} };
is_deeply(\@steps, [50, 40, 30], 'status lists the newest three versions, newest first');
my @files = sort { $b <=> $a } map { m{\.v(\d+)$} ? $1 : () }
            glob("$srv->{prefix}/state/xor.ckpt.v*");
is_deeply(\@files, [50, 40, 30], 'exactly their files are on disk');

# $learn_version and $learn_step name the parameters that answered
$r = $http->post($srv->url('/predict?version=40'), {
    headers => { 'Content-Type' => 'application/json' }, content => $x });
is($r->{headers}{'x-learn'}, '40 40', '$learn_version/$learn_step: a kept version');
$r = $http->post($srv->url('/predict'), {
    headers => { 'Content-Type' => 'application/json' }, content => $x });
is($r->{headers}{'x-learn'}, 'live 50', 'and the live parameters');

# a weights import moves the parameters, not the step: the checkpoint
# written next (at this stop) is at step 50 again, and PATH.v50 stays
my (undef, undef, $y50) = predict('?version=50');
$r = $http->request('PUT', $srv->url('/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('xor_weights_np.mp'),
});
is($r->{status}, 200, 'weights import at step 50');
my (undef, undef, $imported) = predict();
isnt($imported->[0][0], $y50->[0][0], 'the live parameters changed');
$srv->stop;
$srv->start(keep => 1);
$http = LearnClient->new;
is(status()->{step}, 50, 'the step did not move');
is_deeply((predict())[2], $imported, 'the checkpoint holds the imported weights');
is_deeply((predict('?version=50'))[2], $y50,
          'version 50 was not overwritten by the import');

my $old = 40;
my (undef, $v40, $y40) = predict("?version=$old");
is($v40, $old, "a predict can ask for version $old");
train(5);
my (undef, $vlive, $ylive) = predict();
is($vlive, 'live', 'without ?version the live parameters answer');
isnt($ylive->[0][0], $y40->[0][0], "and they differ from version $old");
my (undef, undef, $again) = predict("?version=$old");
is_deeply($again, $y40, "version $old answers the same after training");
my ($code) = predict('?version=7');
is($code, 404, 'a version that is not kept is 404');

# A/B: 10% of this location's predicts to the older version
$srv->stop;
$srv->{server} =~ s/\Q$predict\E/location = \/predict { learn_predict xor; learn_candidate $old 10%; }/;
$srv->start(keep => 1);
$http = LearnClient->new;
train(3);

my %seen;
my $mismatch = 0;
my ($live_now) = (predict('?version=live'))[2];
for (1 .. 2000) {
    my (undef, $v, $y) = predict();
    $seen{$v}++;
    my $want = $v eq 'live' ? $live_now : $y40;
    $mismatch++ if abs($y->[0][0] - $want->[0][0]) > 1e-6;
}
my $n = $seen{$old} // 0;
# binomial(2000, 0.1): mean 200, sd 13.4; four sd either side
cmp_ok($n, '>=', 146, "candidate share: $n of 2000 (>= 146)");
cmp_ok($n, '<=', 254, "candidate share: $n of 2000 (<= 254)");
is($n + ($seen{live} // 0), 2000, 'every predict was live or the candidate');
is($mismatch, 0, 'each answer matches the version that its header names');

my ($v) = grep { $_->{step} == $old } @{ status()->{versions} };
is($v->{predicts}, $n, 'status counts the candidate predicts');
cmp_ok($v->{predict_latency_us}, '>', 0, 'and their latency');

# the candidate version is never pruned: four more checkpoints, each a
# restart that checks the configuration (it would fail with "keeps no
# version 40" once the file is gone)
for my $i (1 .. 4) {
    train(10);
    $srv->stop;
    ok(eval { $srv->start(keep => 1); 1 }, "restart $i with learn_candidate $old")
        or diag($@);
    $http = LearnClient->new;
}
my $top = status()->{step};
@files = sort { $b <=> $a } map { m{\.v(\d+)$} ? $1 : () }
         glob("$srv->{prefix}/state/xor.ckpt.v*");
is_deeply(\@files, [$top, $top - 10, $top - 20, $old],
          "the newest three and the candidate $old are on disk");
is_deeply([map { $_->{step} } @{ status()->{versions} }], \@files,
          'and listed');
my %codes;
for (1 .. 200) {
    my ($c, $v) = predict();
    $codes{$c}++;
    $seen{"after $v"}++;
}
is_deeply(\%codes, { 200 => 200 }, 'every predict answers 200');
cmp_ok($seen{"after $old"} // 0, '>', 0, 'the candidate still answers');

$srv->stop;
open my $log, '<', $srv->error_log or die;
my @bad = grep { /\[(error|crit|alert|emerg)\]/ } <$log>;
is(scalar @bad, 0, 'no error lines') or diag(@bad);

# step 0, the untrained model of a first start, is no version; a PATH.v0
# left by an older build goes at the next version's write
my $fresh = LearnServer->new(
    name    => 'versions-v0',
    workers => 1,
    http    => 'learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt '
             . 'checkpoint_interval=200ms checkpoint_keep=3;',
    server  => 'location = /train { learn_train xor; }
                location = /status { learn_status; }',
)->start;
$srv = $fresh;
$http = LearnClient->new;
LearnServer::wait_for(sub { -s "$fresh->{prefix}/state/xor.ckpt" });
ok(-s "$fresh->{prefix}/state/xor.ckpt", 'the first start wrote a checkpoint of step 0');
ok(!-e "$fresh->{prefix}/state/xor.ckpt.v0", 'but no version of step 0');
is_deeply(status()->{versions}, [], 'none is listed');
open my $v0, '>', "$fresh->{prefix}/state/xor.ckpt.v0" or die;
print $v0 "left by an older build\n";
close $v0;
train(2);
LearnServer::wait_for(sub { -s "$fresh->{prefix}/state/xor.ckpt.v2"
                            && !-e "$fresh->{prefix}/state/xor.ckpt.v0" });
ok(-s "$fresh->{prefix}/state/xor.ckpt.v2", 'step 2 is a version');
ok(!-e "$fresh->{prefix}/state/xor.ckpt.v0", 'an old PATH.v0 was pruned');
is_deeply([map { $_->{step} } @{ status()->{versions} }], [2], 'only 2 is listed');
$fresh->stop;

done_testing();
