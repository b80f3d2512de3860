# conf/replicas/, as `make run-replicas` serves it (on ports of its
# own): steps trained through the front on the trainer are served by
# both followers through the front's learn_balancer, and a follower
# refuses to train.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd ();
use File::Path ();
use Time::HiRes qw(time sleep);
use LearnServer;
use LearnClient;
use LearnBody;
use LearnValgrind;

my ($redis_bin) = grep { -x } map { "$_/redis-server" } split /:/, $ENV{PATH};
plan skip_all => 'redis-server is not installed (Debian: redis-server; '
               . 'make test installs it)' unless $redis_bin;

my $root = Cwd::abs_path('.');
my $prefix = "$root/t/servroot-replicas";
File::Path::remove_tree($prefix);

# the demo's ports, each moved to a free one
my %port = map { $_ => LearnServer::free_port() } 8100 .. 8103, 8109;
sub ported {
    my ($text) = @_;
    $text =~ s/127\.0\.0\.1:(81(?:0[0-3]|09))\b/127.0.0.1:$port{$1}/g;
    return $text;
}

File::Path::make_path("$prefix/conf", "$prefix/redis");
for my $f (glob "$root/conf/replicas/*.conf") {
    open my $in, '<', $f or die $!;
    my $text = ported(do { local $/; <$in> });
    close $in;
    $text =~ s/error_log         stderr info;/error_log logs\/error.log info;/;
    (my $name = $f) =~ s{.*/}{};
    open my $out, '>', "$prefix/conf/$name" or die $!;
    print {$out} $text;
    close $out;
}

my $redis = fork // die $!;
if ($redis == 0) {
    open STDOUT, '>', "$prefix/redis/redis.log";
    open STDERR, '>&', \*STDOUT;
    exec $redis_bin, '--port', $port{8109}, '--bind', '127.0.0.1', '--dir',
         "$prefix/redis", '--save', '', '--appendonly', 'no';
    exit 1;
}

my $modules = $ENV{TEST_NGINX_LOAD_MODULES} || "$root/build/ngx_http_learn_module.so";
my $user = LearnServer::worker_user();
my $g = join('', map { "load_module $_; " } split ' ', $modules)
      . ($user ne '' ? "user $user; " : '');
my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

my %srv;
for my $n (qw(trainer follower1 follower2 front)) {
    my $p = "$prefix/$n";
    File::Path::make_path("$p/logs", "$p/tmp", "$p/state");
    chmod 0777, "$p/state";
    system('cp', "$prefix/conf/common.conf", "$prefix/conf/$n.conf", "$p/") == 0
        or die 'cp';
    is(system(LearnValgrind::wrap("$p/logs", $bin, '-p', "$p/", '-c', "$n.conf",
                                  '-g', $g)), 0, "conf/replicas/$n.conf starts");
    my %listen = (trainer => 8101, follower1 => 8102, follower2 => 8103,
                  front => 8100);
    $srv{$n} = LearnServer->attach(port => $port{ $listen{$n} }, prefix => $p,
                                   bin => $bin);
    $srv{$n}->wait_listening;
}

my $c = LearnClient->new;
my %json = (headers => { 'Content-Type' => 'application/json' });
for my $i (1 .. 3) {
    my $r = $c->post($srv{front}->url('/xor/train'),
                     { %json, content => '{"x": [[0, 1], [1, 1]], "y": [[1], [0]]}' });
    is(json_decode($r->{content})->{step}, $i, "train $i through the front: step $i");
}

# both followers serve step 3 within a second or so, and the front's
# predicts (to whichever follower learn_balancer picks) answer from it
sub step_of {
    my ($n) = @_;
    my $st = eval { json_decode($c->get($srv{$n}->url('/status'))->{content}) };
    return $st ? $st->{models}{xor}{step} : -1;
}
my $ok = LearnServer::wait_for(sub {
    step_of('follower1') == 3 && step_of('follower2') == 3
}, timeout => 10);
ok($ok, 'both followers serve step 3');
my $r = $c->post($srv{front}->url('/xor/predict'),
                 { %json, content => '{"x": [[0, 1]]}' });
is($r->{headers}{'x-learn-step'}, 3, 'a predict through the front answers '
   . 'from step 3, by ' . ($r->{headers}{'x-learn-upstream'} // '-'));
my ($f1, $f2) = @port{8102, 8103};
like($r->{headers}{'x-learn-upstream'} // '',
     qr/^127\.0\.0\.1:(?:$f1|$f2)$/, 'a follower answered it');

my $trainer = json_decode($c->post($srv{trainer}->url('/xor/predict'),
    { %json, content => '{"x": [[0, 1]]}' })->{content})->{y};
my $follower = json_decode($c->post($srv{follower2}->url('/xor/predict'),
    { %json, content => '{"x": [[0, 1]]}' })->{content})->{y};
is_deeply($follower, $trainer, "a follower answers what the trainer does");

$r = $c->post($srv{follower1}->url('/xor/train'),
                 { %json, content => '{"x": [[0, 1]], "y": [[1]]}' });
is($r->{status}, 409, 'a follower refuses to train (409)');

$srv{$_}->stop for qw(front follower1 follower2 trainer);
kill 'TERM', $redis;
waitpid $redis, 0;
File::Path::remove_tree($prefix);

done_testing;
