# learn_set on two workers and learn_feedback: $VAR equals learn_predict's
# answer, labels posted for a $request_id train one step on the features
# that evaluation saw (in whichever worker it ran), and the store refuses
# unknown, expired, repeated and misshapen labels without changing the
# model.  Evaluations survive a reload.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use LearnServer;
use LearnBody;
use Time::HiRes qw(sleep);
use Cwd qw(abs_path);

my $three = abs_path('t/fixtures/three.lua');

my $spread = LearnServer::free_port();

# a second listener with reuseport: fresh connections reach both workers
my $locations = '
        location = /score {
            add_header X-Request-Id $request_id;
            add_header X-Worker $pid;
            return 200 "$score";
        }
        location = /argmax { return 200 "$class $top $c1"; }
        location = /late {
            add_header X-Request-Id $request_id;
            return 200 "$late";
        }
        location = /predict { learn_predict m; }
        location = /predict3 { learn_predict three; }
        location = /train { learn_train m; }
        location = /feedback {
            learn_feedback m keep=8;
            add_header X-Worker $pid;
        }
        location = /relabel { learn_feedback m keep=8 relabel=on; }
        location = /late/feedback { learn_feedback lm ttl=1s; }
        location = /status { learn_status; }';

my $http_conf = sub {
    my ($model) = @_;
    return "learn_model m $model seed=4;
        learn_model three $three seed=6;
        learn_model lm models/xor.lua seed=1;
        learn_set \$score m \$arg_a \$arg_b;
        learn_set \$class three \$arg_a \$arg_b;
        learn_set \$top three \$arg_a \$arg_b output=max;
        learn_set \$c1 three \$arg_a \$arg_b output=1;
        learn_set \$late lm \$arg_a \$arg_b;
        server {
            listen 127.0.0.1:$spread reuseport;
            $locations
        }";
};

my $srv = LearnServer->new(
    name    => 'feedback',
    workers => 2,
    http    => $http_conf->('models/xor.lua'),
    server  => $locations,
)->start;

my $http = LearnClient->new;
my $base = "http://127.0.0.1:$spread";

sub get { $http->get("$base$_[0]", { headers => { Connection => 'close' } }) }

sub predict {
    my ($path, $x) = @_;
    my $r = $http->post("$base$path", {
        headers => { 'Content-Type' => 'application/json' },
        content => JSON::PP->new->encode({ x => [$x] }),
    });
    return json_decode($r->{content})->{y}[0];
}

sub feedback {
    my ($path, $body, $type) = @_;
    my $r = $http->post("$base$path", {
        headers => { 'Content-Type' => $type || 'application/json',
                     Connection => 'close' },
        content => ref $body ? JSON::PP->new->encode($body) : $body,
    });
    $r->{json} = eval { json_decode($r->{content}) };
    return $r;
}

sub status { json_decode($http->get("$base/status")->{content})->{models} }

# $score is learn_predict's answer, as learn_predict's JSON writes it
my @xs = ([0, 1], [1, 0], [0.125, -3.5], [1e-3, 7], [-0.75, 0.5]);
my $same = 0;
for my $x (@xs) {
    my $score = get("/score?a=$x->[0]&b=$x->[1]")->{content};
    my $r = $http->post("$base/predict", {
        headers => { 'Content-Type' => 'application/json' },
        content => JSON::PP->new->encode({ x => [$x] }),
    });
    my ($text) = $r->{content} =~ /^\{"y":\[\[([^\]]+)\]\]\}$/;
    $same++ if defined $text && $score eq $text;
}
is($same, scalar @xs, '$score is the text of learn_predict\'s output for '
   . 'each x');

# several outputs: the argmax index, the largest value, component 1
my $ok = 0;
for my $x ([0.3, -0.2], [-1, 2], [2, 2], [0.01, -5]) {
    my ($class, $top, $c1) = split / /,
        get("/argmax?a=$x->[0]&b=$x->[1]")->{content};
    my $y = predict('/predict3', $x);
    my ($best) = sort { $y->[$b] <=> $y->[$a] } 0 .. $#$y;
    $ok++ if $class == $best && $top == $y->[$best] && $c1 == $y->[1];
}
is($ok, 4, 'argmax, output=max and output=1 agree with learn_predict');

# a label trains one step on what the evaluation saw
my $r = get('/score?a=1&b=0');
my $id = $r->{headers}{'x-request-id'};
like($id, qr/^[0-9a-f]{32}$/, 'the evaluation names its $request_id');
my $before = status()->{m}{step};
$r = feedback('/feedback', { id => $id, y => 1 });
is($r->{status}, 200, 'feedback for it is 200');
is($r->{json}{step}, $before + 1, 'and answers the step, one more');
ok(defined $r->{json}{loss}, 'and the loss');
is(status()->{m}{step}, $before + 1, 'one step applied');

# a repeated label is 409, an unknown id 404; neither trains
$r = feedback('/feedback', { id => $id, y => 1 });
is($r->{status}, 409, 'a second label for the same id is 409');
like($r->{json}{error}, qr/labelled already/, 'saying so');
$r = feedback('/feedback', { id => 'f' x 32, y => 1 });
is($r->{status}, 404, 'an unknown id is 404');
like($r->{json}{error}, qr/unknown or expired/, 'saying so');
is(status()->{m}{step}, $before + 1, 'refused labels applied no step');

# relabel=on takes a new label for a labelled evaluation
$r = feedback('/relabel', { id => $id, y => -1 });
is($r->{status}, 200, 'relabel=on accepts a second label');

# a misshapen label is 400 and leaves the evaluation free for a good one
my $id2 = get('/score?a=0&b=1')->{headers}{'x-request-id'};
$r = feedback('/feedback', { id => $id2, y => [1, 2] });
is($r->{status}, 400, 'a label of the wrong shape is 400');
like($r->{json}{error}, qr/expected \[1, 1\]/, 'naming the expected shape');
$r = feedback('/feedback', { id => $id2, y => "x" });
is($r->{status}, 400, 'a label that is not a number is 400');
$r = feedback('/feedback', { id => $id2, y => 3e38 });
is($r->{status}, 422, 'a label that would make the model Inf is 422');
$r = feedback('/feedback', { id => $id2, y => 1, extra => 1 });
is($r->{status}, 400, 'an unknown key is 400');
like($r->{json}{error}, qr/unknown key "extra"/, 'naming it');
$r = feedback('/feedback', mp({ id => $id2, y => [1] }),
              'application/msgpack');
is($r->{status}, 200, 'after all that, a good label (MessagePack) is 200');

# batched feedback is one step on all its rows
my @ids = map { get("/score?a=$_&b=0.5")->{headers}{'x-request-id'} }
          (0.1, 0.2, 0.3);
$before = status()->{m}{step};
$r = feedback('/feedback', { ids => \@ids, y => [[1], [0], [1]] });
is($r->{status}, 200, 'three ids in one feedback');
is($r->{json}{step}, $before + 1, 'are one step');
$r = feedback('/feedback', { ids => [$ids[0]], y => [[1]] });
is($r->{status}, 409, 'each of them is labelled now');

# a batch with one unknown id claims none of the others
my $fresh = get('/score?a=2&b=2')->{headers}{'x-request-id'};
$r = feedback('/feedback', { ids => [$fresh, 'e' x 32], y => [[1], [1]] });
is($r->{status}, 404, 'a batch with an unknown id is 404');
$r = feedback('/feedback', { id => $fresh, y => 0 });
is($r->{status}, 200, 'and its known id stays free to label');

# labels move the output toward them
my $far = abs(get('/score?a=0.5&b=0.25')->{content} - 0.9);
for (1 .. 60) {
    my $i = get('/score?a=0.5&b=0.25')->{headers}{'x-request-id'};
    feedback('/feedback', { id => $i, y => 0.9 });
}
my $near = abs(get('/score?a=0.5&b=0.25')->{content} - 0.9);
cmp_ok($near, '<', $far / 2, "60 labels of 0.9 move the score toward it "
       . "($far -> $near)");

# an evaluation in one worker, its label answered by the other
my $crossed = 0;
for (1 .. 60) {
    my $e = get('/score?a=0.5&b=0.25');
    my $f = feedback('/feedback', { id => $e->{headers}{'x-request-id'},
                                    y => 0.9 });
    if ($f->{status} == 200
        && $f->{headers}{'x-worker'} ne $e->{headers}{'x-worker'})
    {
        $crossed = 1;
        last;
    }
}
ok($crossed, 'a label trains on an evaluation made in the other worker');

# keep=8: the ninth later evaluation pushes an id out
my $old = get('/score?a=1&b=1')->{headers}{'x-request-id'};
get("/score?a=1&b=$_") for 1 .. 8;
$r = feedback('/feedback', { id => $old, y => 1 });
is($r->{status}, 404, 'an id pushed out by keep=8 later evaluations is 404');

# ttl=1s: an evaluation older than that is expired (the wait is the test)
my $lid = get('/late?a=1&b=1')->{headers}{'x-request-id'};
sleep 2.2;
my $lid2 = get('/late?a=1&b=0')->{headers}{'x-request-id'};
$r = feedback('/late/feedback', { id => $lid, y => 1 });
is($r->{status}, 404, 'an evaluation older than ttl=1s is 404');
$r = feedback('/late/feedback', { id => $lid2, y => 1 });
is($r->{status}, 200, 'a younger one of the same model is 200');

# reload keeps the store
my $kept = get('/score?a=0.25&b=0.25')->{headers}{'x-request-id'};
$srv->reload;
$r = feedback('/feedback', { id => $kept, y => 1 });
is($r->{status}, 200, 'an evaluation made before a reload takes its label '
   . 'after it');

my $s = status()->{m};
cmp_ok($s->{feedback}{steps}, '>=', 60, 'learn_status counts feedback steps');
cmp_ok($s->{feedback}{unknown}, '>=', 2, 'and unknown ids');
cmp_ok($s->{feedback}{repeated}, '>=', 2, 'and repeated labels');
is($s->{feedback}{keep}, 8, 'and says what it keeps');

$srv->stop;
done_testing();
