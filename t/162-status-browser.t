# learn_status's page in a real browser: Debian's chromium, headless,
# renders the page of a server this test starts (a model trained a known
# number of steps, an upstream with learn_balancer); the DOM it built
# has the chart, whose points are exactly the JSON's loss_history, and
# its screenshot is a PNG with the curve's colour in it.  Skipped when
# chromium is missing (TEST_CHROMIUM names another binary).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use LearnBrowser;
use LearnClient;
use LearnServer;
use LearnBody;

my $chromium = LearnBrowser::find();
plan skip_all => 'chromium is not installed (Debian: chromium)' unless $chromium;
plan skip_all => '/usr/bin/python3 (to read the screenshot) is missing'
    unless -x '/usr/bin/python3';

my $dir = tempdir('learn-chromium-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $steps = 37;
my $back = LearnServer::free_port();

my $srv = LearnServer->new(
    name    => 'browser',
    workers => 1,
    http    => "learn_model xor models/xor.lua seed=1;
                upstream back {
                    learn_balancer;
                    server 127.0.0.1:$back;
                }
                server {
                    listen 127.0.0.1:$back;
                    location / { return 200 ok; }
                }",
    server  => 'location = /train { learn_train xor; }
                location = /status { learn_status; }
                location = /p { proxy_pass http://back/; }',
)->start;

my $http = LearnClient->new;
for (1 .. $steps) {
    $http->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0, 1], [1, 0], [1, 1]], "y": [[1], [1], [0]]}',
    })->{status} == 200 or die 'train failed';
}
$http->get($srv->url('/p'))->{status} == 200 or die 'proxy failed' for 1 .. 3;

my $json = json_decode(HTTP::Tiny->new->get($srv->url('/status'))->{content});
my $history = $json->{models}{xor}{loss_history};
is(scalar @$history, $steps, "the JSON has $steps points");

# chromium, killed by its process group's id if it outlives the timeout
sub chromium { return LearnBrowser::run($chromium, $dir, @_) }

my $url = $srv->url('/status?format=html');
my ($rc, $dom) = chromium('--dump-dom', $url);
is($rc, 0, 'chromium --dump-dom ran');
like($dom, qr/<svg[^>]*class="learn-chart"/, 'the DOM has the chart');

# the loss chart's points, as the browser parsed them
my ($series) = $dom =~ m{(<g class="series"[^>]*data-name="xor".*?</g>)}s;
ok($series, 'the loss curve is there') or diag(substr($dom, 0, 2000));
my @pts = ($series // '') =~ /<circle class="pt" data-x="([^"]+)" data-y="([^"]+)"/g;
my @points;
push @points, [ splice(@pts, 0, 2) ] while @pts;
is(scalar @points, scalar @$history, 'the curve has as many points as the JSON');
my @diff = grep {
    my ($p, $j) = ($points[$_], $history->[$_]);
    !$p || $p->[0] != $j->[0] || abs($p->[1] - $j->[1]) > 1e-7 * abs($j->[1])
} 0 .. $#$history;
is(scalar @diff, 0, '... the same steps and losses, in the same order')
    or diag(explain([ map { [ $points[$_], $history->[$_] ] } @diff[0 .. 2] ]));
my ($line) = ($series // '') =~ /<polyline[^>]*points="([^"]*)"/;
is(scalar(() = ($line // '') =~ /[\d.]+,[\d.]+/g), $steps,
   'the polyline goes through every point');
like($dom, qr{<svg[^>]*data-chart="bars".*data-name="predicted".*<rect class="bar" data-label="127\.0\.0\.1:$back"}s,
     "the balancer's chart has the peer");

# the screenshot: a PNG, not blank, with the curve's colour (#1f77b4)
my $png = "$dir/page.png";
($rc) = chromium("--screenshot=$png", '--window-size=1200,900', $url);
is($rc, 0, 'chromium --screenshot ran');
ok(-s $png && -s $png > 10_000, 'a screenshot of more than 10 kB') or diag(-s $png);

my $read_png = <<'PY';
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
colours, curve = set(), 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = tuple(line[x:x + 3])
        colours.add(px)
        if abs(px[0] - 0x1f) + abs(px[1] - 0x77) + abs(px[2] - 0xb4) < 30:
            curve += 1
    prev = line
print(w, h, len(colours), curve)
PY

open my $py, '>', "$dir/png.py" or die $!;
print $py $read_png;
close $py;
my $info = `/usr/bin/python3 $dir/png.py $png 2>&1`;
chomp $info;
my ($w, $h, $colours, $curve) = $info =~ /^(\d+) (\d+) (\d+) (\d+)$/;
ok(defined $w, "the screenshot decodes as a PNG ($info)") or diag($info);
is("$w x $h", '1200 x 900', '... of the window size') if defined $w;
cmp_ok($colours // 0, '>', 16, '... not blank: many colours');
cmp_ok($curve // 0, '>', 100, "... with the curve's colour in it");

$srv->stop;
done_testing();
