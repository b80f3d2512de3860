# learn_job_status as a page: content negotiation (Accept: text/html,
# ?format=html; JSON stays the default, DELETE answers JSON, an unknown
# format is a 400), a finished job's page (its charts' points are the
# JSON history's epochs, losses and accuracies, text for text; its
# fields), the list (one row per job linking to its page, a small curve
# per train job), and escaping of what requests put in the table (file
# names in inputs and errors).  The page in a real browser:
# t/164-job-browser.t.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd ();
use File::Path ();
use File::Temp qw(tempdir);
use JSON::PP;
use LearnServer;
use LearnClient;

my $root = Cwd::abs_path('.');
my $dir = tempdir('learn-job-page-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $data = "$dir/data";
mkdir $data or die $!;
chmod 0777, $dir, $data;

# 3 classes in 4 features, separable: validation accuracy is a number
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

my $J = JSON::PP->new->canonical;
my $c = LearnClient->new(timeout => 30);

my $srv = LearnServer->new(
    name    => 'job-page',
    workers => 1,
    http    => "learn_model c3 $dir/c3.lua seed=3
                    checkpoint=state/c3.ckpt checkpoint_keep=2;
                learn_data_root $data;",
    server  => 'location = /train  { learn_job_train c3; }
                location = /input  { learn_job_predict c3; }
                location = /status { learn_job_status; }',
)->start;

sub req {
    my ($method, $path, $body, %h) = @_;
    return $c->request($method, $srv->url($path), {
        content => defined $body ? $J->encode($body) : '',
        headers => { 'Content-Type' => 'application/json', %h } });
}

sub json { my $r = req('GET', $_[0]); return eval { $J->decode($r->{content}) } }

sub wait_job {
    my ($id) = @_;
    my $j;
    LearnServer::wait_for(sub {
        $j = json("/status?jobId=$id");
        $j && $j->{status} =~ /^(?:done|error|cancelled)$/ }, timeout => 60);
    return $j;
}

# the (data-x, data-y) pairs of the series named NAME in a page
sub points {
    my ($page, $name) = @_;
    my ($g) = $page =~ m{(<g class="series"[^>]*data-name="\Q$name\E".*?</g>)}s;
    return undef unless $g;
    my @v = $g =~ /<circle class="pt" data-x="([^"]+)" data-y="([^"]+)"/g;
    my @p;
    push @p, [ splice(@v, 0, 2) ] while @v;
    return \@p;
}

# what the page's chart must hold: the JSON's text of each number (the
# same writer), for the epochs whose value is a number
sub expected {
    my ($raw, $key) = @_;
    my ($hist) = $raw =~ /"history": \[(.*)\]\}/s;
    my @e;
    while ($hist =~ /\{"epoch": (\d+), (.*?)\}/g) {
        my ($ep, $rest) = ($1, $2);
        my ($v) = $rest =~ /"$key": ([^,}]+)/;
        push @e, [ $ep, $v ] if $v ne 'null';
    }
    return \@e;
}

# rows of x (4 features) with classes 0..2
my (@x, @y);
for my $i (0 .. 149) {
    my $k = $i % 3;
    push @x, [ map { $k + 0.1 * (($i * 7 + $_ * 3) % 5) } 0 .. 3 ];
    push @y, $k;
}

# 1. a finished job: JSON by default, the page on Accept: text/html
my $r = req('POST', '/train', { x => \@x, y => \@y, epochs => 7,
                                batch_size => 16, validation => 0.2,
                                seed => 5 });
is($r->{status}, 202, 'a train job: 202');
my $id = eval { $J->decode($r->{content})->{jobId} } // '';
my $j = wait_job($id);
is($j->{status}, 'done', 'it is done') or diag explain $j;
ok($j->{version}, "it wrote version $j->{version}");

$r = req('GET', "/status?jobId=$id");
like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON is the default');
my $raw = $r->{content};

my $browser = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
$r = req('GET', "/status?jobId=$id", undef, Accept => $browser);
is($r->{status}, 200, "a browser's Accept: 200");
like($r->{headers}{'content-type'}, qr{^text/html}, '  text/html');
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'none'/,
     '  with the CSP');
my $page = $r->{content};
like($page, qr/^<!DOCTYPE html>.*<\/html>\n\z/s, '  a whole page');
unlike($page, qr/<script|<link|\bsrc=/i, '  with no script and no external asset');

$r = req('GET', "/status?jobId=$id&format=html");
is($r->{content}, $page, '?format=html gives the same page');
$r = req('GET', "/status?jobId=$id&format=json", undef, Accept => $browser);
like($r->{headers}{'content-type'}, qr{^application/json}, '?format=json wins over Accept');
$r = req('GET', "/status?jobId=$id", undef,
         Accept => 'application/json, text/html');
like($r->{headers}{'content-type'}, qr{^application/json},
     'an Accept naming JSON first gets JSON');
$r = req('GET', "/status?jobId=$id&format=xml");
is($r->{status}, 400, 'an unknown format: 400');
like(eval { $J->decode($r->{content})->{error} } // '',
     qr/format "xml" is not json or html/, '  says why, in JSON');
$r = req('GET', "/status?jobId=$id&format=html&refresh=5");
like($r->{content}, qr/<meta http-equiv="refresh" content="5">/, '&refresh=5 reloads');
$r = req('GET', "/status?jobId=ffffffffffffffff&format=html");
is($r->{status}, 404, 'an unknown id is a 404 for the page too');

# the charts: the JSON history's points, in order
my $n = scalar @{$j->{history}};
is($n, 7, 'the JSON has 7 epochs');
for my $key (qw(loss val_loss val_accuracy)) {
    my $want = expected($raw, $key);
    is(scalar @$want, 7, "the JSON has 7 numbers of $key");
    is_deeply(points($page, $key), $want,
              "the page's $key curve has exactly the JSON's points");
}
like($page, qr/<svg [^>]*data-title="loss by epoch"[^>]*data-x-min="1" data-x-max="7"/,
     'the loss chart spans epochs 1 to 7');
like($page, qr/<svg [^>]*data-title="validation accuracy by epoch"/,
     'val_accuracy has a chart of its own');
my ($loss_svg) = $page =~ m{(<svg [^>]*data-title="loss by epoch".*?</svg>)}s;
unlike($loss_svg, qr/data-name="val_accuracy"/, '  not on the loss chart');

# the fields, as the JSON has them
for my $k (qw(status model epoch epochs samples version step)) {
    like($page, qr{<td[^>]*data-key="$k">\Q$j->{$k}\E</td>},
         "the page shows $k = $j->{$k}");
}
like($page, qr{data-key="input">\(inline x\), \(inline y\)</td>}, '  and its input');
like($page, qr{data-key="error">n/a</td>}, '  and no error');
like($page, qr{data-key="output">n/a</td>}, '  and no output');

# 2. a job that fails on a file whose name needs escaping
my $bad = q{<b id='x'>&"z.npz};
$r = req('POST', '/train', { files => [$bad] });
is($r->{status}, 202, 'a job on a missing file with markup in its name: 202')
    or diag $r->{content};
my $idb = eval { $J->decode($r->{content})->{jobId} } // '';
my $jb = wait_job($idb);
is($jb->{status}, 'error', 'it ends in error');
like($jb->{error}, qr/\Q$bad\E: no such file/, '  naming the file (JSON)');
$r = req('GET', "/status?jobId=$idb&format=html");
my $esc = '&lt;b id=&#39;x&#39;&gt;&amp;&quot;z.npz';
like($r->{content}, qr{data-key="error">\Q$esc\E: no such file}, 'the page escapes the error');
like($r->{content}, qr{data-key="input">\Q$esc\E</td>}, '  and the input');
unlike($r->{content}, qr/<b id=/, '  no markup of the request gets through');
like($r->{content}, qr/No epoch has ended yet/, '  and says there is no curve');

# 3. a predict job's page: its output, no chart
$r = req('POST', '/input', { x => [ @x[0 .. 9] ], output => 'p.npy' });
is($r->{status}, 202, 'a predict job: 202');
my $idp = eval { $J->decode($r->{content})->{jobId} } // '';
is(wait_job($idp)->{status}, 'done', '  done');
$r = req('GET', "/status?jobId=$idp&format=html");
like($r->{content}, qr{data-key="kind">predict</td>.*data-key="output">p\.npy</td>}s,
     'its page names the output');
like($r->{content}, qr{data-key="samples">10</td>}, '  and the rows it predicted');
unlike($r->{content}, qr/<svg/, '  and has no chart');

# 4. the list: a row per job, oldest first, each linking to its page
$r = req('GET', '/status', undef, Accept => $browser);
like($r->{headers}{'content-type'}, qr{^text/html}, 'the list as a page');
my $list = $r->{content};
my @rows = $list =~ /<tr data-job="([0-9a-f]{16})">/g;
is_deeply(\@rows, [$id, $idb, $idp], 'one row per job, in the order they came');
like($list, qr{<a href="\?jobId=$id&amp;format=html">$id</a>}, 'a link to its page');
my ($row) = $list =~ m{(<tr data-job="$id">.*?</tr>)}s;
like($row, qr{data-key="status">done</td>}, 'the done job\'s row');
is_deeply(points($row, 'loss'), expected($raw, 'loss'),
          '  has a small curve with the JSON\'s losses');
($row) = $list =~ m{(<tr data-job="$idb">.*?</tr>)}s;
like($row, qr{data-key="error">\Q$esc\E: no such file}, 'the list escapes errors');
unlike($row, qr/<svg/, '  and draws no curve for a job without epochs');
$r = req('GET', '/status');
like($r->{headers}{'content-type'}, qr{^application/json}, 'the list is JSON by default');
ok(eval { $J->decode($r->{content})->{jobs} }, '  as it was');

# 5. DELETE answers JSON whatever the Accept
$r = req('DELETE', "/status?jobId=$id", undef, Accept => $browser);
is($r->{status}, 409, 'DELETE of an ended job: 409');
like($r->{headers}{'content-type'}, qr{^application/json}, '  in JSON');

$srv->stop;

# 6. an empty table
$srv->start;
$r = req('GET', '/status?format=html');
like($r->{content}, qr/0 job\(s\) in the table.*No job yet/s, 'an empty list says so');
$srv->stop;

done_testing;
