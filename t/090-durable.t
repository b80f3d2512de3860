# Durable state: checkpoints survive a graceful restart exactly, SIGKILL
# of the master and all workers within one checkpoint interval, and
# reloads keep the zone; a changed model starts fresh and says so.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use POSIX ();
use Time::HiRes qw(sleep time);
use LearnServer;
use LearnBody;

my $interval = 0.3;    # seconds
my $http_conf = "learn_model xor models/xor.lua seed=1 "
              . "checkpoint=state/xor.ckpt checkpoint_interval=300ms;";

my $srv = LearnServer->new(
    name    => 'durable',
    workers => 2,
    http    => $http_conf,
    server  => 'location = /train { learn_train xor; }
                location = /predict { learn_predict xor; }
                location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;
my $body = mp({ x => [[0, 1], [1, 0]], y => [[1], [1]] });

sub train {
    my $r = $http->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/msgpack' },
        content => $body,
    });
    return $r->{status} == 200 ? mp_unpack($r->{content})->{step} : undef;
}

sub status { json_decode($http->get($srv->url('/status'))->{content})
                 ->{models}{xor} }

sub predict {
    my $r = $http->post($srv->url('/predict'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0, 1], [1, 1]]}',
    });
    return json_decode($r->{content})->{y};
}

# 1. graceful stop and start: exactly the same step and parameters
train() for 1 .. 25;
my $before = predict();
$srv->stop;
ok(-s "$srv->{prefix}/state/xor.ckpt", 'a checkpoint was written at shutdown');
$srv->start(keep => 1);
is(status()->{step}, 25, 'after stop and start the step is 25');
is_deeply(predict(), $before, 'and predictions are identical');

# 2. SIGKILL in the middle of a training load from 4 clients
my $stop_at = time + 1.5;
my @pids;
for my $c (1 .. 4) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $last = 0;
        while (time < $stop_at) {
            my $s = eval { train() };
            $last = $s if $s && $s > $last;
        }
        open my $fh, '>', "$srv->{prefix}/acked.$c" or die;
        print $fh $last;
        close $fh;
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
sleep 1.0;
$srv->kill9;
waitpid $_, 0 for @pids;

my $acked = 0;
for my $c (1 .. 4) {
    open my $fh, '<', "$srv->{prefix}/acked.$c" or die;
    my $v = <$fh> // 0;
    $acked = $v if $v > $acked;
}
cmp_ok($acked, '>', 25, "training went on until the kill (last acked step $acked)");

$srv->start(keep => 1);
my $restored = status()->{step};
# steps answered in one interval, measured before the kill
my $rate = ($acked - 25) / 1.0;
cmp_ok($restored, '<=', $acked, "restored step $restored is not ahead of the acked $acked");
cmp_ok($acked - $restored, '<=', $rate * ($interval + 0.2) + 5,
       "at most one checkpoint interval of steps lost ($acked acked, $restored restored)");

# 3. reload with the same model keeps the zone and the step
my $step = status()->{step};
train() for 1 .. 3;
$srv->reload;
is(status()->{step}, $step + 3, 'reload keeps the state');

# 4. reload with other layers: fresh, with a notice
open my $fh, '>', "$srv->{prefix}/conf/wide.lua" or die;
print $fh <<'LUA';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.01 },
}
LUA
close $fh;
(my $wide = $http_conf) =~ s{models/xor\.lua}{wide.lua};
$srv->reload(http => $wide);
my $st = status();
is($st->{step}, 0, 'a model with other layers starts fresh after reload');
is($st->{params}, 2 * 32 + 32 + 32 + 1, 'and has the new layers');
$srv->stop;

# 5. a torn or corrupt checkpoint is refused with the file and the reason
my $ckpt = "$srv->{prefix}/state/xor.ckpt";
my $bytes = do { open my $f, '<:raw', $ckpt or die; local $/; <$f> };
sub put_file { open my $f, '>:raw', $ckpt or die; print $f $_[0]; close $f }

put_file(substr($bytes, 0, length($bytes) - 100));
my ($rc, $out) = $srv->test_config;
isnt($rc, 0, 'nginx -t fails on a truncated checkpoint');
like($out, qr/checkpoint "\Q$ckpt\E" refused: checkpoint is \d+ bytes, the model's needs \d+ \(truncated/,
     'naming the file and the sizes');

my $flipped = $bytes;
substr($flipped, length($bytes) - 20, 1) ^= "\x01";
put_file($flipped);
($rc, $out) = $srv->test_config;
isnt($rc, 0, 'nginx -t fails on a flipped bit');
like($out, qr/refused: checkpoint checksum mismatch/, "naming the checksum") or diag($out);

# 6. checkpoint_bad=fresh starts fresh instead, with a warning
$srv->set_http("$wide checkpoint_bad=fresh" =~ s/;(.*)$/$1;/r);
($rc, $out) = $srv->test_config;
is($rc, 0, 'with checkpoint_bad=fresh nginx -t passes');
like($out, qr/\[warn\].*checkpoint .* is not usable, starting fresh \(checkpoint_bad=fresh\): checkpoint checksum mismatch/,
     'and warns with the reason');
$srv->start(keep => 1);
is(status()->{step}, 0, 'checkpoint_bad=fresh starts the model fresh');
$srv->stop;

open my $log, '<', $srv->error_log or die;
my @lines = <$log>;
ok((grep { /learn_model "xor": the layers changed since the running configuration, the model starts fresh/ } @lines),
   'the reload says the model starts fresh');
ok((grep { /learn_model "xor": restored step 25 from/ } @lines),
   'the restart says which step it restored');
my @bad = grep { /\[(error|crit|alert|emerg)\]/ } @lines;
is(scalar @bad, 0, 'no error lines') or diag(@bad);

done_testing();
