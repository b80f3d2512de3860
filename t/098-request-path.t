# The request path: bodies that nginx spooled to a temporary file give
# the answers the same bodies give in memory (and are read on a thread,
# not on the event loop); ?version= that is no version is a 400 that runs
# nothing and keeps the connection; a worker reads each kept version
# once, and a version whose file is corrupt answers 500 with one warning
# in error.log, not one per request.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);
use Cwd ();
use File::Path ();
use LearnServer;
use LearnClient;
use LearnBody;

my $dir = Cwd::abs_path('t') . '/servroot-request-path-models';
File::Path::make_path($dir);

# 12289 parameters: a version file of about 48 KB
open my $fh, '>', "$dir/w4k.lua" or die $!;
print $fh <<'_LUA_';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(1, 4096), nn.Tanh(), nn.Linear(4096, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.01 },
}
_LUA_
close $fh;

sub bad_lines {
    my ($srv, $re) = @_;
    open my $log, '<', $srv->error_log or die $!;
    return grep { /$re/ } <$log>;
}


# 1. bodies on disk

my $srv = LearnServer->new(
    name    => 'request-path-bodies',
    workers => 1,
    main    => 'error_log logs/debug.log debug;',
    http    => 'learn_model a models/mlp_big.lua seed=1;
                learn_model b models/mlp_big.lua seed=1;
                learn_model c models/mlp_big.lua seed=1;
                client_max_body_size 16m;',
    server  => 'location = /mem/predict { learn_predict a;
                                          client_body_buffer_size 16m; }
                location = /disk/predict { learn_predict a;
                                           client_body_buffer_size 1k; }
                location = /file/predict { learn_predict a;
                                           client_body_in_file_only clean; }
                location = /a/train { learn_train a;
                                      client_body_buffer_size 16m; }
                location = /b/train { learn_train b;
                                      client_body_buffer_size 1k; }
                location = /c/train { learn_train c;
                                      client_body_in_file_only clean; }
                location = /b/predict { learn_predict b; }
                location = /c/predict { learn_predict c; }',
)->start;

srand(7);
my $rows = 64;
my @x = map { [ map { int(rand(256)) / 255 } 1 .. 784 ] } 1 .. $rows;
my @y = map { int(rand(10)) } 1 .. $rows;
my $mp_x = "\x81\xa1x" . raw_tensor([$rows, 784], 'float32',
                                    pack('f<*', map { @$_ } @x));
my $mp_xy = "\x82\xa1x" . raw_tensor([$rows, 784], 'float32',
                                     pack('f<*', map { @$_ } @x))
          . "\xa1y" . raw_tensor([$rows], 'int32', pack('l<*', @y));
my $json_x = JSON::PP->new->encode({ x => \@x });

my $http = LearnClient->new;
sub post {
    my ($path, $body, $type) = @_;
    my $r = $http->post($srv->url($path), {
        headers => { 'Content-Type' => $type // 'application/msgpack',
                     Accept => 'application/json' },
        content => $body,
    });
    return ($r->{status}, $r->{content});
}

for my $case (['msgpack', $mp_x, 'application/msgpack'],
              ['JSON', $json_x, 'application/json'])
{
    my ($name, $body, $type) = @$case;
    my ($code, $mem) = post('/mem/predict', $body, $type);
    is($code, 200, "a $name predict of " . length($body) . ' bytes in memory');
    my ($dcode, $disk) = post('/disk/predict', $body, $type);
    is($dcode, 200, "the same body over client_body_buffer_size 1k");
    is($disk, $mem, 'gives the same answer');
    my ($fcode, $file) = post('/file/predict', $body, $type);
    is($fcode, 200, 'and with client_body_in_file_only');
    is($file, $mem, 'the same answer');
}

# chunked, spooled: the body's length is not known in advance
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $srv->port)
        or die "connect: $!";
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;
    my $chunked = join '', map {
        my $part = substr($mp_x, $_ * 3000, 3000);
        length $part ? sprintf("%x\r\n", length $part) . "$part\r\n" : ''
    } 0 .. int(length($mp_x) / 3000);
    print {$s} "POST /disk/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             . "Content-Type: application/msgpack\r\nAccept: application/json\r\n"
             . "Transfer-Encoding: chunked\r\n\r\n${chunked}0\r\n\r\n";
    my $reply = LearnClient::read_all($s);
    my ($body) = $reply =~ /\r\n\r\n(.*)$/s;
    my (undef, $mem) = post('/mem/predict', $mp_x);
    like($reply, qr/^HTTP\/1\.1 200/, 'a chunked body spooled to disk: 200');
    is($body, $mem, 'the same answer');
}

# a train step from a body in memory, on disk and in a file only: the
# same loss and step, and the same parameters after it
my ($ta, $la) = post('/a/train', $mp_xy);
my ($tb, $lb) = post('/b/train', $mp_xy);
my ($tc, $lc) = post('/c/train', $mp_xy);
is_deeply([$ta, $tb, $tc], [200, 200, 200], 'train steps from memory, disk and file');
like($la, qr/^\{"loss":[0-9.e+-]+,"step":1\}$/, 'one step');
is($lb, $la, 'the body on disk gives the same loss and step');
is($lc, $la, 'and in a file only');
my (undef, $pa) = post('/mem/predict', $mp_x);
my (undef, $pb) = post('/b/predict', $mp_x);
my (undef, $pc) = post('/c/predict', $mp_x);
is($pb, $pa, 'the model trained from disk predicts as the one from memory');
is($pc, $pa, 'and the one trained from a file only');

$srv->stop;
# the bodies on disk were read on a pool thread, those in memory not
# (debug log: one worker, one request at a time)
my (@requests, %threaded);
{
    open my $d, '<', "$srv->{prefix}/logs/debug.log" or die $!;
    while (<$d>) {
        push @requests, $1 if /http request line: "POST (\S+) HTTP/;
        $threaded{$#requests}++ if /learn: body of \d+ bytes read on a thread/;
    }
}
my @disk = grep { $requests[$_] !~ m{^/(mem/predict|a/train)$} } 0 .. $#requests;
my @mem = grep { $requests[$_] =~ m{^/(mem/predict|a/train)$} } 0 .. $#requests;
is(scalar(grep { $threaded{$_} } @disk), scalar @disk,
   scalar(@disk) . ' spooled bodies were each read on a thread (debug log)')
    or diag(join ' ', map { "$requests[$_]:" . ($threaded{$_} // 0) } @disk);
is(scalar(grep { $threaded{$_} } @mem), 0,
   scalar(@mem) . ' bodies in memory were not');
my @bad = bad_lines($srv, qr/exited on signal|\[(error|crit|alert|emerg)\]/);
is(scalar @bad, 0, 'no error lines') or diag(@bad);


# 2. ?version= that is neither a step nor "live"; 3. kept versions

$srv = LearnServer->new(
    name    => 'request-path-versions',
    workers => 1,
    http    => "learn_model w $dir/w4k.lua seed=1 checkpoint=state/w.ckpt
                    checkpoint_interval=100ms checkpoint_keep=8;",
    server  => 'location = /train { learn_train w; }
                location = /predict { learn_predict w; }
                location = /status { learn_status; }',
)->start;

my $xq = '{"x": [[0.1], [0.5], [-0.7]]}';

sub status { json_decode(LearnClient->new->get($srv->url('/status'))->{content})
                 ->{models}{w} }

# HTTP/1.1 requests on one kept-alive connection, with no retry: a
# closed connection is the answer "closed" (the next request connects
# again)
$SIG{PIPE} = 'IGNORE';
my $ka;
sub ka_predict {
    my ($query) = @_;
    $ka ||= do {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $srv->port)
            or die "connect: $!";
        setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
        binmode $s;
        $s;
    };
    my $req = "POST /predict$query HTTP/1.1\r\nHost: x\r\n"
            . "Content-Type: application/json\r\n"
            . 'Content-Length: ' . length($xq) . "\r\n\r\n$xq";
    my $r = eval { LearnClient->new->_exchange($ka, $req) };
    return $r if $r;
    undef $ka;
    return { status => 'closed', content => $@, headers => {} };
}

my $predicts = status()->{predicts};
for my $v ('abc', '0', '-3', '5x', '') {
    my $r = ka_predict("?version=$v");
    is($r->{status}, 400, "?version=$v: 400");
    like($r->{content},
         qr/^\{"error": "version must be a checkpoint's step or \\"live\\""\}\n$/,
         'saying what a version is, and only that');
}
is(status()->{predicts}, $predicts, 'no predict ran for them');
my $r = ka_predict('?version=live');
is($r->{status}, 200, 'the same connection goes on: ?version=live is 200');
is(status()->{predicts}, $predicts + 1, 'and counted once');

# seven versions, steps 1 to 7: one step, then its checkpoint
my %want;
for my $step (1 .. 7) {
    LearnClient->new->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0.3]], "y": [[0.9]]}',
    })->{status} == 200 or die 'train failed';
    my $deadline = time + 10;
    sleep 0.02 until (status()->{checkpoint}{step} // -1) == $step
                     || time > $deadline;
    is(status()->{checkpoint}{step}, $step, "checkpoint of step $step");
    $want{$step} = json_decode(ka_predict('')->{content})->{y};
}
is_deeply([map { $_->{step} } @{ status()->{versions} }], [reverse 1 .. 7],
          'seven versions are kept');

# version 1's file goes bad before any predict read it
my $v1 = "$srv->{prefix}/state/w.ckpt.v1";
my $size = -s $v1;
open my $bad_fh, '>:raw', "$v1.new" or die $!;
print $bad_fh 'x' x $size;
close $bad_fh;
rename "$v1.new", $v1 or die $!;

# a client cycles six versions ten times: the right answers, each
# version's file read once
my ($worker) = $srv->workers;
sub rchar {
    open my $io, '<', "/proc/$worker/io" or die "worker $worker: $!";
    my ($n) = map { /^rchar:\s+(\d+)/ ? $1 : () } <$io>;
    return $n;
}
my $from = rchar();
my ($right, $wrong) = (0, 0);
for my $round (1 .. 10) {
    for my $step (2 .. 7) {
        my $r = ka_predict("?version=$step");
        my $y = $r->{status} == 200 ? json_decode($r->{content})->{y} : undef;
        if ($y && ($r->{headers}{'x-learn-version'} // '') eq $step
            && JSON::PP->new->canonical->encode($y)
               eq JSON::PP->new->canonical->encode($want{$step}))
        {
            $right++;
        } else {
            $wrong++;
            diag("version $step: $r->{status} $r->{content}") if $wrong < 4;
        }
    }
}
is($right, 60, 'cycling six versions ten times: 60 right answers');
is($wrong, 0, 'none wrong');
my $read = rchar() - $from;
my $file = -s "$srv->{prefix}/state/w.ckpt.v2";
cmp_ok($read, '<', 2 * 6 * $file,
       sprintf('the worker read %.0f KB meanwhile: each %.0f KB version once, '
               . 'not once per predict', $read / 1024, $file / 1024));

# the corrupt version: 500, one warning
my $log_from = $srv->log_size;
my %codes;
for (1 .. 20) {
    my $r = ka_predict('?version=1');
    $codes{$r->{status}}++;
    like($r->{content},
         qr/^\{"error": "version 1 of the model cannot be read[^"]*"\}\n$/,
         'the 500 says in JSON which version cannot be read') if $_ == 1;
}
is_deeply(\%codes, { 500 => 20 },
          'its 20 predicts get 500, on the same kept-alive connection');
is(ka_predict('?version=3')->{status}, 200, 'the other versions still answer');
my @warn = $srv->wait_log(qr/\[warn\].*version 1 cannot be read/,
                          from => $log_from, timeout => 0);
is(scalar @warn, 1, 'error.log warns once, not once per request') or diag(@warn);
like($warn[0] // '', qr/learn_model "w": version 1 cannot be read, its predicts get 500 for 60 s: not a checkpoint file/,
     'naming the model, the version and the reason');
close $ka if $ka;

$srv->stop;
@bad = bad_lines($srv, qr/exited on signal|\[(crit|alert|emerg)\]/);
is(scalar @bad, 0, 'no crash, no alert') or diag(@bad);
@bad = bad_lines($srv, qr/header already sent/);
is(scalar @bad, 0, 'no "header already sent"') or diag(@bad);

done_testing();
