# Model versions replicated through Redis: a trainer with store= publishes
# each checkpoint version (keys never overwritten, pruned like the kept
# versions); followers with follow= serve the newest one within a second,
# refuse train (409), refuse corrupt values and other layouts, and ride
# out Redis down at start, a Redis restart and a trainer killed with -9.
# Passwords stay out of logs and learn_status.  Each Redis here is a
# redis-server of the suite's own (127.0.0.1, its own port and directory),
# stopped by its pid.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd qw(abs_path);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use LearnServer;
use LearnClient;
use LearnBody;

chomp(my $redis_bin = `command -v redis-server 2>/dev/null` // '');
plan skip_all => 'redis-server is not installed (Debian: redis-server)'
    unless $redis_bin;

my $root = abs_path('.');

# ---- a redis-server of our own, and a binary-safe client ------------------

my (%redis_pass, %redis_pids);

# a suite that dies leaves no redis-server behind
END { kill 'KILL', keys %redis_pids }

sub redis_start {
    my ($port, $dir, @extra) = @_;
    make_path($dir);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/redis.log" or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $redis_bin, '--port', $port, '--bind', '127.0.0.1',
             '--dir', $dir, '--save', '', '--appendonly', 'no',
             '--daemonize', 'no', @extra;
        exit 127;
    }
    $redis_pids{$pid} = 1;
    LearnServer::wait_for(sub { (redis_cmd($port, 'PING') // '') eq 'PONG' })
        or die "redis-server on $port did not start: see $dir/redis.log";
    return $pid;
}

# SHUTDOWN SAVE: the data comes back when it starts again in the same dir
sub redis_stop {
    my ($port, $pid) = @_;
    redis_cmd($port, 'SHUTDOWN', 'SAVE');
    my $deadline = time + 5;
    while (LearnServer::alive($pid) && time < $deadline) { sleep 0.02 }
    kill 'KILL', $pid if LearnServer::alive($pid);
    waitpid $pid, 0;
    delete $redis_pids{$pid};
}

sub redis_read {
    my ($s) = @_;
    my $line = <$s> // die "redis: connection closed\n";
    $line =~ s/\r\n\z//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    return "-$v" if $t eq '-';
    return 0 + $v if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length $buf < $v + 2) {
            read($s, $buf, $v + 2 - length $buf, length $buf) or die "redis: short\n";
        }
        return substr($buf, 0, $v);
    }
    return [map { redis_read($s) } 1 .. $v] if $t eq '*' && $v >= 0;
    return undef;
}

# one command on a fresh connection (AUTH first where the server has a
# password); undef when Redis does not answer
sub redis_cmd {
    my ($port, @args) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 3)
        or return undef;
    binmode $s;
    my @cmds = ([@args]);
    unshift @cmds, ['AUTH', $redis_pass{$port}] if $redis_pass{$port};
    my $r;
    for my $c (@cmds) {
        print {$s} '*' . @$c . "\r\n"
                 . join('', map { '$' . length($_) . "\r\n$_\r\n" } @$c);
        $r = eval { redis_read($s) };
    }
    close $s;
    return $r;
}

# ---- helpers ------------------------------------------------------------

my $http = LearnClient->new;
my $json = { 'Content-Type' => 'application/json' };
my $x = '{"x": [[0, 1], [1, 0], [0.5, 0.25]]}';

sub train {
    my ($srv, $n) = @_;
    for (1 .. $n) {
        my $r = $http->post($srv->url('/train'), {
            headers => $json, content => '{"x": [[0, 1], [1, 1]], "y": [[1], [0]]}' });
        $r->{status} == 200 or die "train: $r->{status} $r->{content}";
    }
}

sub predict {
    my ($srv) = @_;
    my $r = LearnClient->new->post($srv->url('/predict'),
                                   { headers => $json, content => $x });
    return ($r->{status}, $r->{content});
}

# a predict of kept version v: (status, body, X-Learn-Version)
sub predict_v {
    my ($srv, $v) = @_;
    my $r = LearnClient->new->post($srv->url("/predict?version=$v"),
                                   { headers => $json, content => $x });
    return ($r->{status}, $r->{content}, $r->{headers}{'x-learn-version'} // '');
}

sub status {
    my ($srv) = @_;
    my $r = eval { $http->get($srv->url('/status')) } or return {};
    return json_decode($r->{content})->{models}{xor};
}

sub log_lines {
    my ($srv, $re) = @_;
    open my $fh, '<', $srv->error_log or return ();
    return grep { /$re/ } <$fh>;
}

# error.log lines matching re, from byte offset "from" on
sub log_lines_from {
    my ($srv, $from, $re) = @_;
    open my $fh, '<', $srv->error_log or return ();
    seek $fh, $from, 0;
    return grep { /$re/ } <$fh>;
}

sub wait_step {
    my ($srv, $step, $timeout) = @_;
    return LearnServer::wait_for(sub { (status($srv)->{step} // -1) == $step },
                                 timeout => $timeout // 10);
}

my $rport = LearnServer::free_port();
my $rdir = "$root/t/servroot-redis-r1";
remove_tree($rdir);
my $rpid = redis_start($rport, $rdir);
my $url = "redis://127.0.0.1:$rport/t140";
my $k = 't140:{xor}';

my $locs = 'location = /train { learn_train xor; }
            location = /predict { learn_predict xor; }
            location = /weights { learn_weights xor; }
            location = /status { learn_status; }';

# ---- 1. configuration: store= needs checkpoint=, URLs read strictly --------

my $conf = LearnServer->new(name => 'redis-conf', workers => 1,
    http => 'learn_model xor models/xor.lua;', server => $locs)->start;
sub check {
    $conf->set_http($_[0]);
    return $conf->test_config;
}
my ($rc, $out) = check("learn_model xor models/xor.lua store=$url;");
isnt($rc, 0, 'store= without checkpoint= fails nginx -t');
like($out, qr/learn_model "xor": store= needs checkpoint=PATH/, 'saying why') or diag($out);
for my $bad ('store=http://127.0.0.1:1/x', 'store=redis://', 'store=redis://h:0',
             'store=redis://h:99999', 'store=redis://h:12x', 'store=redis://h/',
             '"store=redis://h/a{b}"', 'store=redis://[::1]:6379',
             'store=redis://pw@h:1', 'follow=redis://:s3cret@h:bad')
{
    ($rc, $out) = check("learn_model xor models/xor.lua checkpoint=state/x.ckpt $bad;");
    isnt($rc, 0, "$bad fails nginx -t");
    like($out, qr/\[emerg\] .*learn_model "xor": invalid (store|follow)= URL: /,
         'as an invalid URL') or diag($out);
    unlike($out, qr/s3cret/, 'without echoing the password') if $bad =~ /s3cret/;
}
($rc, $out) = check('learn_model xor models/xor.lua follow=rediss://h:1;');
like($out, qr/TLS \(rediss:\/\/\) is not supported/, 'rediss:// is refused as TLS')
    or diag($out);
($rc, $out) = check("learn_model xor models/xor.lua checkpoint=state/x.ckpt "
                    . "store=$url follow=$url;");
like($out, qr/one store= or follow= only/, 'store= and follow= together are refused')
    or diag($out);
($rc, $out) = check("learn_model xor models/xor.lua checkpoint=state/x.ckpt "
                    . "store=redis://u:p\@localhost:6390/a.b:c-d_e;");
is($rc, 0, 'a URL with a user, a password and a prefix passes') or diag($out);
($rc, $out) = check("learn_model xor models/xor.lua follow=redis://127.0.0.1;");
is($rc, 0, 'follow= with a host alone (port 6379, prefix learn) passes') or diag($out);
$conf->stop;

# ---- 2. publication and sync ------------------------------------------------

my $t = LearnServer->new(name => 'redis-train', workers => 2,
    http => "learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt "
          . "checkpoint_interval=100ms checkpoint_keep=2 store=$url;",
    server => $locs)->start;
my $f = LearnServer->new(name => 'redis-follow', workers => 2,
    http => "learn_model xor models/xor.lua seed=2 follow=$url;",
    server => $locs)->start;

# a follower that keeps a checkpoint of what it serves
my $fc = LearnServer->new(name => 'redis-follow-ckpt', workers => 1,
    http => "learn_model xor models/xor.lua seed=4 checkpoint=state/xor.ckpt "
          . "checkpoint_interval=100ms follow=$url;",
    server => $locs)->start;

my ($code, $body) = predict($f);
is($code, 503, 'a follower with nothing published answers 503');
like($body, qr/model \\"xor\\" is not ready: no version from \Q$url\E yet/, 'not ready')
    or diag($body);

train($t, 10);
my $t0;
LearnServer::wait_for(sub { $t0 = time; (redis_cmd($rport, 'GET', "$k:latest") // '') =~ /^10:\d+$/ })
    or fail('the trainer published version 10');
ok(wait_step($f, 10, 5), 'the follower serves step 10');
my $sync = time - $t0;
cmp_ok($sync, '<', 1.0, sprintf('within a second of its publication (%.3f s)', $sync));

my (undef, $want) = predict($t);
my %answers;
for (1 .. 20) {
    my ($c, $b) = predict($f);
    $answers{"$c $b"}++;
}
is_deeply(\%answers, { "200 $want" => 20 },
          'every follower predict (both workers) answers what the trainer does');

my $r = $http->post($f->url('/train'), { headers => $json,
    content => '{"x": [[0, 1]], "y": [[1]]}' });
is($r->{status}, 409, 'train at a follower: 409');
like($r->{content}, qr/follows \Q$url\E/, 'naming the store') or diag($r->{content});
$r = $http->request('PUT', $f->url('/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('xor_weights_np.mp') });
is($r->{status}, 409, 'a weights import at a follower: 409');

my $s = status($f)->{store};
is($s->{role}, 'follow', 'status: role follow');
is($s->{url}, $url, 'status: the URL');
is($s->{step}, 10, 'status: serving version 10');
is($s->{latest}, 10, 'status: the newest in the store');
is($s->{lag_steps}, 0, 'status: no lag');
ok($s->{up} && $s->{transfers} >= 1, 'status: up, a version taken');
cmp_ok($s->{lag_ms}, '<', 1000, "status: taken $s->{lag_ms} ms after its publication");
is(status($t)->{store}{role}, 'store', 'the trainer: role store');
is(status($t)->{store}{step}, 10, 'the trainer: published 10');
my $prom = $http->get($f->url('/status?format=prometheus'))->{content};
like($prom, qr/^learn_model_store_step\{model="xor"\} 10$/m, 'Prometheus: store step');
like($prom, qr/^learn_model_store_up\{model="xor"\} 1$/m, 'Prometheus: up');
like($prom, qr/^# TYPE learn_model_store_refused_total counter$/m, 'Prometheus: refused');

# ---- 3. keys: written once, never overwritten; pruned by checkpoint_keep ----

my $v10 = redis_cmd($rport, 'GET', "$k:v:10");
ok(defined $v10 && substr($v10, 0, 8) eq 'LEARNCKP', 'version 10 is a checkpoint');
my $from = $t->log_size;
$r = $http->request('PUT', $t->url('/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('xor_weights_np.mp') });
is($r->{status}, 200, 'an import on the trainer (the step stays 10)');
ok($t->wait_log(qr/version 10 already in \Q$url\E/, from => $from),
   'its checkpoint at step 10 is not published again');
is(redis_cmd($rport, 'GET', "$k:v:10"), $v10, 'version 10 was not overwritten');
is(status($f)->{step}, 10, 'the follower still serves 10');

ok(LearnServer::wait_for(sub { status($f)->{store}{subscribed} }),
   'status: the follower is subscribed to the channel');
my $notices = status($f)->{store}{notices};
$from = $f->log_size;
for my $step (15, 20, 25) {
    train($t, 5);
    LearnServer::wait_for(sub { (redis_cmd($rport, 'GET', "$k:latest") // '') =~ /^$step:/ });
    # while subscribed the poll is every second: this is the message
    my $t1 = time;
    wait_step($f, $step, 5);
    diag(sprintf('version %d served %.0f ms after the pointer moved', $step,
                 (time - $t1) * 1000));
}
my @announced = log_lines_from($f, $from, qr/serving version \d+ .*\(announced, /);
cmp_ok(scalar @announced, '>=', 2,
       'versions are taken when announced, not at the next poll')
    or diag(log_lines_from($f, $from, qr/serving version/));
cmp_ok(status($f)->{store}{notices}, '>=', $notices + 3, 'status counts the messages');

# a message says nothing the follower trusts: it only makes it look
$from = $f->log_size;
redis_cmd($rport, 'PUBLISH', "$k:published", "99999999:0\x00\xff" x 100);
redis_cmd($rport, 'PUBLISH', "$k:published", '');
ok(LearnServer::wait_for(sub { status($f)->{store}{notices} >= $notices + 5 }),
   'hostile messages are heard');
sleep 0.2;
is(status($f)->{step}, 25, 'and change nothing: step 25 serves');
is(status($f)->{store}{refused}, 0, 'nothing refused');
is(scalar(log_lines_from($f, $from, qr/\[(error|alert|crit)\]/)), 0, 'nothing logged');

# the old worker 0 stops its subscriber thread at exit (its blocked read
# is shut down), the new one subscribes
my $t2 = time;
$f->reload;
cmp_ok(time - $t2, '<', 3, sprintf('a reload replaces the subscribed worker (%.2f s)',
                                   time - $t2));
ok(LearnServer::wait_for(sub { status($f)->{store}{subscribed} }),
   'the new worker 0 subscribes');
is(status($f)->{step}, 25, 'step 25 still serves');
is(scalar(log_lines_from($f, $from, qr/\[(alert|crit)\]|open socket/)), 0,
   'the old worker left nothing open');
is_deeply(redis_cmd($rport, 'ZRANGE', "$k:versions", 0, -1), [20, 25],
          'checkpoint_keep=2: the store keeps versions 20 and 25');
is(redis_cmd($rport, 'EXISTS', "$k:v:10") + redis_cmd($rport, 'EXISTS', "$k:v:15"), 0,
   'versions 10 and 15 are gone');
ok(wait_step($f, 25), 'the follower serves 25');
my (undef, $y25) = predict($t);
is((predict($f))[1], $y25, 'the same answers as the trainer');

# ?version= on a follower: any version the store keeps, read on a thread
# and cached per worker; the answers are the trainer's for that version
my (undef, $t20) = predict_v($t, 20);
my %v20;
$v20{join ' ', predict_v($f, 20)}++ for 1 .. 10;
is_deeply(\%v20, { "200 $t20 20" => 10 },
          '?version=20 at the follower: the store\'s version 20, in every worker')
    or diag(explain(\%v20));
isnt($t20, $y25, 'which is not what step 25 answers');
is((predict_v($f, 25))[1], $y25, '?version=25: the newest');
is((predict_v($f, 10))[0], 404, '?version=10, pruned from the store: 404');
is((predict_v($f, 15))[0], 404, 'so is 15');
is((predict_v($f, 26))[0], 404, '?version=26, newer than the store\'s newest: 404');
like((predict_v($f, 26))[1], qr/keeps no version 26/, 'saying so');
is(status($f)->{step}, 25, 'the live parameters are still 25');
is((predict($f))[1], $y25, 'and answer as before');

# ---- 4. hostile values: corrupt, truncated, another step, too large -------

my $v25 = redis_cmd($rport, 'GET', "$k:v:25");
my $latest = redis_cmd($rport, 'GET', "$k:latest");
my %bad = (
    1000 => 'not a checkpoint at all',
    1001 => substr($v25, 0, length($v25) - 100),
    1002 => $v25,
    1003 => $v25 . ('x' x 1000),
);
my %why = (1000 => qr/magic|checkpoint/i, 1001 => qr/truncated|short|size|checksum/i,
           1002 => qr/its header says step 25/, 1003 => qr/larger than a checkpoint/);
for my $step (sort keys %bad) {
    $from = $f->log_size;
    redis_cmd($rport, 'SET', "$k:v:$step", $bad{$step});
    redis_cmd($rport, 'SET', "$k:latest", "$step:0");
    my ($line) = $f->wait_log(qr/refused version $step from/, from => $from);
    ok($line, "a bad value as version $step is refused");
    like($line // '', $why{$step}, 'saying why') or diag($line);
    like($line // '', qr/\[error\].*step 25 keeps serving/, 'at error, step 25 serving');
    is((predict($f))[1], $y25, 'and the old parameters answer');
}
is(status($f)->{store}{refused}, 4, 'status counts 4 refused values');
$from = $f->log_size;
my @bad_v = predict_v($f, 1001);
is($bad_v[0], 500, '?version=1001 (truncated in the store): 500');
ok($f->wait_log(qr/\[warn\].*version 1001 cannot be read.*(truncated|short|size|checksum)/i,
                from => $from), 'with a warning that says why');
is((predict_v($f, 1002))[0], 500, '?version=1002 (another step\'s value): 500');
is((predict($f))[1], $y25, 'the live parameters still answer');
is(scalar(log_lines($f, qr/refused version 1003/)), 1, 'each logged once');
redis_cmd($rport, 'DEL', map { "$k:v:$_" } keys %bad);
$from = $f->log_size;
redis_cmd($rport, 'SET', "$k:latest", 'garbage');
ok($f->wait_log(qr/\[error\].*store \Q$url\E: "\Q$k\E:latest" is not "STEP:MS"/,
                from => $from), 'a pointer that is not STEP:MS: one error line');
sleep 0.5;
is((predict($f))[1], $y25, 'step 25 keeps serving');
redis_cmd($rport, 'SET', "$k:latest", $latest);
ok($f->wait_log(qr/answers again/, from => $from), 'the pointer mended: back');
is(scalar(log_lines_from($f, $from, qr/\[error\]/)), 1, 'one error line for it');

# ---- 5. another layout: refused, nothing served ---------------------------

my $m = LearnServer->new(name => 'redis-layout', workers => 1,
    http => "learn_model xor $root/t/fixtures/three.lua follow=$url;",
    server => $locs)->start;
my ($line) = $m->wait_log(qr/refused version 25 from/);
like($line // '', qr/shape|layout/, 'a follower of another layout refuses the version')
    or diag($line);
is((predict($m))[0], 503, 'and stays not ready (503)');
$m->stop;

# ---- 6. Redis restarted: both sides log once, then catch up ---------------

my ($tfrom, $ffrom) = ($t->log_size, $f->log_size);
redis_stop($rport, $rpid);
train($t, 5);
ok($t->wait_log(qr/\[error\].*store \Q$url\E: .*published once it answers again/,
                from => $tfrom), 'Redis down: the trainer says so');
ok($f->wait_log(qr/\[error\].*store \Q$url\E: .*serving what it has/, from => $ffrom),
   'and the follower');
sleep 1.5;
is((predict($f))[1], $y25, 'the follower keeps serving 25');
$rpid = redis_start($rport, $rdir);
ok(wait_step($f, 30, 10), 'Redis back: the follower catches up to 30');
ok(LearnServer::wait_for(sub { status($f)->{store}{subscribed} }, timeout => 10),
   'and subscribes again');
ok($t->wait_log(qr/store \Q$url\E answers again/, from => $tfrom), 'the trainer says it is back');
ok($f->wait_log(qr/store \Q$url\E answers again/, from => $ffrom), 'so does the follower');
my @down = log_lines_from($f, $ffrom, qr/\[error\].*store /);
is(scalar @down, 1, 'the follower logged the outage once, not per attempt')
    or diag(@down);

ok(wait_step($fc, 30), 'the follower with a checkpoint serves 30 too');
$fc->stop;

# ---- 7. the trainer killed: followers keep serving -------------------------

my (undef, $y30) = predict($f);
$t->kill9;
sleep 1;
my %after;
$after{join ' ', predict($f)}++ for 1 .. 10;
is_deeply(\%after, { "200 $y30" => 10 }, 'trainer SIGKILLed: the follower serves 30');
ok(status($f)->{store}{up}, 'and its store is up');

# ---- 8. Redis down at start: nginx starts, 503 until the first version ----

redis_stop($rport, $rpid);
my $late = LearnServer->new(name => 'redis-late', workers => 1,
    http => "learn_model xor models/xor.lua seed=3 follow=$url;",
    server => $locs)->start;
($code, $body) = predict($late);
is($code, 503, 'Redis down at start: nginx runs, predicts are 503');
like($body, qr/not ready/, '"not ready"');
sleep 1;
is(scalar(grep { /\[error\]/ } log_lines($late, qr/store /)), 1, 'one line for the outage');
$rpid = redis_start($rport, $rdir);
ok(wait_step($late, 30, 10), 'Redis up: the late follower serves 30');
is((predict($late))[1], $y30, 'the same answers');
$late->stop;
redis_stop($rport, $rpid);
$fc->start(keep => 1);
is_deeply([predict($fc)], [200, $y30],
          'Redis down, a follower restarted with its checkpoint serves it at once');
$rpid = redis_start($rport, $rdir);
$fc->stop;
$f->stop;

# ---- 9. auth: requirepass; no credentials in logs or status ---------------

my $aport = LearnServer::free_port();
my $adir = "$root/t/servroot-redis-r2";
remove_tree($adir);
$redis_pass{$aport} = 'pw-s3cret';
my $apid = redis_start($aport, $adir, '--requirepass', 'pw-s3cret');
my $aurl = "redis://127.0.0.1:$aport/auth";
my $ta = LearnServer->new(name => 'redis-auth-t', workers => 1,
    http => "learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt "
          . "checkpoint_interval=100ms store=redis://:pw-s3cret\@127.0.0.1:$aport/auth;",
    server => $locs)->start;
my $fa = LearnServer->new(name => 'redis-auth-f', workers => 1,
    http => "learn_model xor models/xor.lua follow=redis://:pw-s3cret\@127.0.0.1:$aport/auth;",
    server => $locs)->start;
my $fb = LearnServer->new(name => 'redis-auth-bad', workers => 1,
    http => "learn_model xor models/xor.lua follow=redis://:wrong-pw\@127.0.0.1:$aport/auth;",
    server => $locs)->start;
train($ta, 3);
ok(wait_step($fa, 3), 'with the password: the follower serves step 3');
is(redis_cmd($aport, 'GET', 'auth:{xor}:latest') =~ /^3:/ ? 1 : 0, 1, 'published with AUTH');
($line) = $fb->wait_log(qr/store redis:/);
like($line // '', qr/AUTH refused \(WRONGPASS\)/, 'a wrong password: AUTH refused');
is((predict($fb))[0], 503, 'and nothing served');
my $st = status($fa)->{store};
is($st->{url}, $aurl, 'status shows the URL without the password');
ok($st->{auth}, 'and that it authenticates');
my $all = join '', map { $http->get($_->url('/status'))->{content},
                         $http->get($_->url('/status?format=prometheus'))->{content} }
                   $ta, $fa, $fb;
$ta->stop; $fa->stop; $fb->stop;
$all .= join '', map { log_lines($_, qr/./) } $ta, $fa, $fb, $t;
unlike($all, qr/pw-s3cret|wrong-pw/, 'no password in any status page or error.log');

redis_stop($aport, $apid);
redis_stop($rport, $rpid);

done_testing();
