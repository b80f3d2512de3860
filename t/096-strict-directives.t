# Directive arguments are read strictly: a number with trailing garbage
# (learn_thread_pool threshold=, learn_candidate's share) or a
# checkpoint_* option without checkpoint= fails nginx -t with a message
# that names it, instead of starting with a value the user did not
# write.  learn_weights refuses a body of another content type (415)
# without importing it.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnServer;
use LearnClient;
use LearnBody;

my $model = 'learn_model xor models/xor.lua seed=1 checkpoint=state/xor.ckpt '
          . 'checkpoint_interval=1h checkpoint_keep=3;';

my $srv = LearnServer->new(
    name    => 'strict',
    workers => 1,
    http    => $model,
    server  => 'location = /train { learn_train xor; }
                location = /predict { learn_predict xor; }
                location = /weights { learn_weights xor; }
                location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;

# 1. learn_weights PUT with Content-Type text/plain: 415, nothing imported
my $before = $http->get($srv->url('/weights'),
                        { headers => { Accept => 'application/json' } });
is($before->{status}, 200, 'weights export');
my $r = $http->request('PUT', $srv->url('/weights'), {
    headers => { 'Content-Type' => 'text/plain' },
    content => fixture('xor_weights_np.mp'),
});
is($r->{status}, 415, 'a weights PUT as text/plain: 415');
like($r->{content},
     qr/^\{"error": "content type \\"text\/plain\\" is not supported, use application\/msgpack or application\/json"\}/,
     'naming the type and the ones accepted');
is($http->get($srv->url('/weights'), { headers => { Accept => 'application/json' } })
        ->{content}, $before->{content}, 'the weights are unchanged');
$r = $http->request('PUT', $srv->url('/weights'), {
    headers => { 'Content-Type' => 'application/msgpack' },
    content => fixture('xor_weights_np.mp'),
});
is($r->{status}, 200, 'the same body as application/msgpack imports');

# five steps, and a graceful stop writes version 5 (for learn_candidate)
for (1 .. 5) {
    $http->post($srv->url('/train'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0, 1]], "y": [[1]]}',
    })->{status} == 200 or die 'train failed';
}
$srv->stop;
ok(-e "$srv->{prefix}/state/xor.ckpt.v5", 'version 5 is kept');

# nginx -t with this http{} text: (exit status, output)
sub check {
    my ($http_text) = @_;
    $srv->set_http($http_text);
    return $srv->test_config;
}

# a second server{} with one location, for location directives
my $port = LearnServer::free_port();
sub with_location {
    my ($loc) = @_;
    return "$model
    server { listen 127.0.0.1:$port; location = /p { $loc } }";
}

my ($rc, $out);

# nginx -t's [emerg] line: nginx 1.22 prints it with the pid, 1.26 without
my $emerg = qr/\[emerg\] (?:\d+#\d+: )?/;

# 2. learn_thread_pool NAME threshold=N: digits only
for my $bad ('threshold=abc', 'threshold=12x', 'threshold=') {
    ($rc, $out) = check(with_location("learn_predict xor; learn_thread_pool default $bad;"));
    isnt($rc, 0, "learn_thread_pool default $bad fails nginx -t");
    like($out, qr/${emerg}invalid parameter "\Q$bad\E"/, 'naming the parameter')
        or diag($out);
}
($rc, $out) = check(with_location('learn_predict xor; learn_thread_pool default threshold=5000;'));
is($rc, 0, 'threshold=5000 passes') or diag($out);

# 3. learn_candidate STEP PERCENT%: a number, then %
for my $bad ('5abc%', '%', '5 %', '0%', '101%', '2.555%') {
    ($rc, $out) = check(with_location("learn_predict xor; learn_candidate 5 \"$bad\";"));
    isnt($rc, 0, "learn_candidate 5 \"$bad\" fails nginx -t");
    like($out, qr/${emerg}learn_candidate: share "\Q$bad\E" must be a percentage/,
         'naming the share') or diag($out);
}
for my $good ('5%', '2.5%', '100%') {
    ($rc, $out) = check(with_location("learn_predict xor; learn_candidate 5 $good;"));
    is($rc, 0, "learn_candidate 5 $good passes") or diag($out);
}

# 4. checkpoint_* options need checkpoint= (checkpoint_keep was refused
# before as well)
for my $opt ('checkpoint_interval=10s', 'checkpoint_keep=3',
             'checkpoint_bad=fresh')
{
    ($rc, $out) = check("learn_model xor models/xor.lua seed=1 $opt;");
    isnt($rc, 0, "learn_model ... $opt without checkpoint= fails nginx -t");
    my ($name) = $opt =~ /^(\w+)=/;
    like($out, qr/${emerg}learn_model "xor": "?\Q$name\E\S* needs checkpoint=PATH/,
         'naming the option') or diag($out);
}
($rc, $out) = check("learn_model xor models/xor.lua seed=1;");
is($rc, 0, 'without them it passes') or diag($out);

done_testing();
