# Memory a request can make a worker use: activations (rows times the
# widest layer) are bounded by learn_max_elements (413 before anything
# is allocated), a workspace grown by a large request shrinks back after
# it, and a weights import naming millions of empty entries is refused
# before its tables are allocated.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd ();
use File::Path ();
use LearnServer;
use LearnClient;
use LearnBody;

my $dir = Cwd::abs_path('t') . '/servroot-bounds-models';
File::Path::make_path($dir);

# 1-256-1: 4 parameters, rows of one number, activations 256 wide
open my $fh, '>', "$dir/lin.lua" or die $!;
print $fh <<'_LUA_';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(1, 256), nn.Tanh(), nn.Linear(256, 1)),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.01 },
}
_LUA_
close $fh;

my $srv = LearnServer->new(
    name    => 'bounds',
    workers => 1,
    http    => "learn_model lin $dir/lin.lua seed=1;
                client_max_body_size 16m;",
    server  => 'location = /predict { learn_predict lin; }
                location = /train { learn_train lin; }
                location = /big/predict { learn_predict lin;
                                          learn_max_elements 32m; }
                location = /big/train { learn_train lin;
                                        learn_max_elements 32m; }
                location = /weights { learn_weights lin; }',
)->start;

my ($worker) = $srv->workers;

# VmRSS and VmHWM of the worker, in kB
sub mem {
    open my $f, '<', "/proc/$worker/status" or die "worker $worker: $!";
    my %v = map { /^(VmRSS|VmHWM):\s+(\d+)/ ? ($1 => $2) : () } <$f>;
    return ($v{VmRSS}, $v{VmHWM});
}

# raw_tensor with 32-bit dimensions
sub tensor {
    my ($shape, $data) = @_;
    return "\x83\xa5shape" . pack('C', 0x90 + @$shape)
         . join('', map { pack('CN', 0xce, $_) } @$shape)
         . "\xa5dtype\xa7float32"
         . "\xa4data\xc6" . pack('N', length $data) . $data;
}

sub col { my ($n) = @_; tensor([$n, 1], pack('f<*', map { ($_ % 7) / 7 } 1 .. $n)) }
sub predict_body { "\x81\xa1x" . col($_[0]) }
sub train_body { "\x82\xa1x" . col($_[0]) . "\xa1y" . col($_[0]) }

my $http = LearnClient->new;
sub post {
    my ($path, $body, %h) = @_;
    return $http->post($srv->url($path), {
        headers => { 'Content-Type' => 'application/msgpack', %h },
        content => $body,
    });
}

# 1. a weights import of 4,000,000 entries "" -> [] (8 MB): the old build
# allocated and filled a name and a tensor per entry (about 320 MB)
is($http->get($srv->url('/weights'))->{status}, 200, 'weights export');
my ($rss0, $hwm0) = mem();
my $n = 4_000_000;
my $r = $http->request('PUT', $srv->url('/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => "\xdf" . pack('N', $n) . ("\xa0\x90" x $n),
});
is($r->{status}, 400, 'a weights map of 4,000,000 empty entries: 400');
like($r->{content},
     qr/^\{"error": "the body names 4000000 tensors, the model has 4 parameters"\}/,
     'naming the count and the model\'s');
my (undef, $hwm1) = mem();
cmp_ok($hwm1 - $hwm0, '<', 64 * 1024,
       sprintf('the worker\'s peak memory rose by %.1f MB (< 64 MB)',
               ($hwm1 - $hwm0) / 1024));
$r = post('/predict', predict_body(4));
is($r->{status}, 200, 'the same connection and model still work');

# 2. a large request within the limits, then a small one: the workspace
# goes back down (a fresh worker: its peak is its own)
$srv->stop;
$srv->start;
($worker) = $srv->workers;
$http = LearnClient->new;
for my $what (['predict', \&predict_body], ['train', \&train_body]) {
    my ($name, $make) = @$what;
    post("/$name", $make->(4));
    my ($base, $hwm) = mem();
    $r = post("/big/$name", $make->(65536));
    is($r->{status}, 200, "$name of 65536 rows (16.8M activations): 200");
    if ($name eq 'predict') {
        # a bin of 65536 floats (Data::MessagePack cannot read bin)
        cmp_ok(length($r->{content}), '>', 65536 * 4, 'with all rows of y');
    }
    my (undef, $peak) = mem();
    cmp_ok($peak - $hwm, '>', 64 * 1024,
           sprintf('it made the worker grow (peak %.0f MB, before %.0f MB)',
                   $peak / 1024, $hwm / 1024));
    $r = post("/$name", $make->(4));
    is($r->{status}, 200, "then a $name of 4 rows");
    my ($after) = mem();
    cmp_ok($after - $base, '<', 32 * 1024,
           sprintf('after it the worker is back to %.1f MB (from %.1f MB; '
                   . 'peak %.0f MB)', $after / 1024, $base / 1024,
                   $peak / 1024));
}

# 3. activations above learn_max_elements: x [262144, 1] has 262144
# elements (within 1048576), its activations 262144 x 256
for my $name ('predict', 'train') {
    $r = post("/$name", $name eq 'predict' ? predict_body(262144)
                                           : train_body(262144));
    is($r->{status}, 413, "$name of x [262144, 1] through a 256-wide layer: 413");
    like($r->{content},
         qr/^\{"error": "262144 rows make activations of 67108864 elements \(262144 x 256\), above learn_max_elements 1048576"\}/,
         'naming the rows, the width and the limit');
}
is(post('/predict', predict_body(4))->{status}, 200,
   'and the connection goes on');

$srv->stop;
open my $log, '<', $srv->error_log or die $!;
my @bad = grep { /exited on signal|\[(error|crit|alert|emerg)\]/ } <$log>;
is(scalar @bad, 0, 'no error lines') or diag(@bad);

done_testing();
