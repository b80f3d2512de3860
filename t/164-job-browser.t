# A job's page in a real browser: Debian's chromium, headless, renders
# the page of a finished train job on a server this test starts; the DOM
# it built has the loss, val_loss and val_accuracy curves with exactly
# the JSON history's points, the job list links to that page, and the
# screenshot is a PNG that is not blank.  Skipped when chromium is
# missing (TEST_CHROMIUM names another binary).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use LearnBrowser;
use LearnClient;
use LearnServer;

my $chromium = LearnBrowser::find();
plan skip_all => 'chromium is not installed (Debian: chromium)' unless $chromium;

my $dir = tempdir('learn-job-browser-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
open my $mf, '>', "$dir/c3.lua" or die $!;
print $mf <<'_LUA_';
local nn = require "learn.nn"
return nn.model {
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.Adam { lr = 0.02 },
}
_LUA_
close $mf;

my $srv = LearnServer->new(
    name    => 'job-browser',
    workers => 1,
    http    => "learn_model c3 $dir/c3.lua seed=3;",
    server  => 'location = /train  { learn_job_train c3; }
                location = /status { learn_job_status; }',
)->start;

my $J = JSON::PP->new;
my $c = LearnClient->new(timeout => 30);
my (@x, @y);
for my $i (0 .. 149) {
    my $k = $i % 3;
    push @x, [ map { $k + 0.1 * (($i * 7 + $_ * 3) % 5) } 0 .. 3 ];
    push @y, $k;
}
my $epochs = 9;
my $r = $c->post($srv->url('/train'), {
    headers => { 'Content-Type' => 'application/json' },
    content => $J->encode({ x => \@x, y => \@y, epochs => $epochs,
                            batch_size => 16, validation => 0.2 }) });
is($r->{status}, 202, 'a train job: 202');
my $id = $J->decode($r->{content})->{jobId};
my $j;
LearnServer::wait_for(sub {
    $j = $J->decode($c->get($srv->url("/status?jobId=$id"))->{content});
    $j->{status} ne 'queued' && $j->{status} ne 'running' }, timeout => 60);
is($j->{status}, 'done', 'it is done');
is(scalar @{$j->{history}}, $epochs, "the JSON has $epochs epochs");

my $url = $srv->url("/status?jobId=$id&format=html");
my ($rc, $dom) = LearnBrowser::run($chromium, $dir, '--dump-dom', $url);
is($rc, 0, 'chromium --dump-dom ran');
like($dom, qr/<svg[^>]*class="learn-chart"/, 'the DOM has the charts');

# each curve's points, as the browser parsed them, against the JSON's
for my $key (qw(loss val_loss val_accuracy)) {
    my ($g) = $dom =~ m{(<g class="series"[^>]*data-name="$key".*?</g>)}s;
    ok($g, "the $key curve is there") or next;
    my @v = $g =~ /<circle class="pt" data-x="([^"]+)" data-y="([^"]+)"/g;
    my @pts;
    push @pts, [ splice(@v, 0, 2) ] while @v;
    is(scalar @pts, $epochs, "  with $epochs points");
    my @diff = grep {
        my ($p, $h) = ($pts[$_], $j->{history}[$_]);
        !$p || $p->[0] != $h->{epoch}
           || abs($p->[1] - $h->{$key}) > 1e-7 * abs($h->{$key})
    } 0 .. $epochs - 1;
    is(scalar @diff, 0, "  the JSON history's epochs and values of $key, in order")
        or diag(explain([ map { [ $pts[$_], $j->{history}[$_] ] } @diff ]));
    my ($line) = $g =~ /<polyline[^>]*points="([^"]*)"/;
    is(scalar(() = ($line // '') =~ /[\d.]+,[\d.]+/g), $epochs,
       '  and the line goes through every point');
}
like($dom, qr{<td[^>]*data-key="status">done</td>}, 'the status is shown');

# the list, in the browser: the job's row links to that page
($rc, $dom) = LearnBrowser::run($chromium, $dir, '--dump-dom',
                                $srv->url('/status?format=html'));
is($rc, 0, 'chromium renders the list');
like($dom, qr{<tr data-job="$id">.*?<a href="\?jobId=$id&amp;format=html">}s,
     'whose row links to the job\'s page');

# the screenshot: a PNG, large enough not to be blank
my $png = "$dir/job.png";
($rc) = LearnBrowser::run($chromium, $dir, "--screenshot=$png",
                          '--window-size=1000,1400', $url);
is($rc, 0, 'chromium --screenshot ran');
ok(-s $png && -s $png > 10_000, 'a screenshot of more than 10 kB') or diag(-s $png);
open my $fh, '<:raw', $png or die $!;
read $fh, my $sig, 8;
is($sig, "\x89PNG\r\n\x1a\n", '  a PNG');

$srv->stop;
done_testing();
