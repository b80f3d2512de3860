# conf/jobs.conf as `make run-jobs` serves it (on a port of its own), and
# examples/digits_jobs.py run against it end to end: sklearn's digits
# trained from an .npz by a job, tested by a predict job and by the
# seed's synchronous /output; the example exits 0 when the held-out
# accuracy is above 0.9.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd ();
use File::Path ();
use LearnServer;
use LearnValgrind;

my $py = '/usr/bin/python3';
plan skip_all => 'needs /usr/bin/python3 with numpy and sklearn (Debian: '
               . 'python3-sklearn)'
    unless system("$py -c 'import numpy, sklearn' 2>/dev/null") == 0;

my $root = Cwd::abs_path('.');
my $p = "$root/t/servroot-jobs-example";
File::Path::remove_tree($p);
File::Path::make_path("$p/logs", "$p/tmp", "$p/state", "$p/data");
chmod 0777, "$p/state", "$p/data";

my $port = LearnServer::free_port();
open my $in, '<', "$root/conf/jobs.conf" or die $!;
my $text = do { local $/; <$in> };
close $in;
$text =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g or die "listen";
$text =~ s/error_log         stderr info;/error_log logs\/error.log info;/;
open my $out, '>', "$p/jobs.conf" or die $!;
print {$out} $text;
close $out;

my $modules = $ENV{TEST_NGINX_LOAD_MODULES} || "$root/build/ngx_http_learn_module.so";
my $user = LearnServer::worker_user();
my $g = join('', map { "load_module $_; " } split ' ', $modules)
      . ($user ne '' ? "user $user; " : '');
my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

is(system(LearnValgrind::wrap("$p/logs", $bin, '-p', "$p/", '-c', 'jobs.conf',
                              '-g', $g)), 0, 'conf/jobs.conf starts');
my $srv = LearnServer->attach(port => $port, prefix => $p, bin => $bin);
$srv->wait_listening;

my $got = `$py $root/examples/digits_jobs.py http://127.0.0.1:$port $p/data 2>&1`;
is($? >> 8, 0, 'examples/digits_jobs.py succeeds') or diag $got;
like($got, qr/test accuracy 0\.9\d+ on 450 held-out digits/,
     'and prints an accuracy above 0.9');
like($got, qr/kept version \d+/, 'the job ended with a kept version');
my ($v) = $got =~ /kept version (\d+)/;
ok(defined $v && -f "$p/state/digits.ckpt.v$v", "state/digits.ckpt.v$v exists");
note $got;

$srv->stop;
File::Path::remove_tree($p);

done_testing;
