# learn_status?format=prometheus read by a real parser: Debian's
# python3-prometheus-client, through t/lib/prom_check.py, which adds
# the checks the lax text parser leaves out (every family in one block,
# one # HELP and one # TYPE before its samples).  Each block's last
# request is the scrape; what it must count comes from the block's
# earlier requests: answered (200) predicts and trains per model.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

use File::Temp ();
use JSON::PP ();

no_shuffle();

# per block: its models, its upstreams as nginx holds their names (the
# second of TEST 1 has a quote, a backslash and a newline to escape in
# its label), the models with a checkpoint and the loss each must show
my %blocks = (
    1 => { models => [qw(a b)], checkpointed => [ 'b' ],
           upstreams => [ 'back', "we\"ird\\na\nme" ] },
    2 => { models => [ 'diverge' ], loss => { diverge => 'NaN' } },
    3 => { models => [ 'a' ], loss => { a => 'NaN' } },
);

add_response_body_check(sub {
    my ($block, $body, $idx, $rep, $dry_run) = @_;
    my @reqs = ref $block->request ? @{ $block->request } : ($block->request);
    return if $dry_run || $idx != $#reqs;

    my ($n) = $block->name =~ /TEST (\d+):/;
    my @codes = ref $block->error_code ? @{ $block->error_code } : ();
    my $b = $blocks{$n};
    my %expect = (upstreams => $b->{upstreams} || [], loss => $b->{loss} || {},
                  checkpointed => $b->{checkpointed} || [],
                  predicts => { map { $_ => 0 } @{ $b->{models} } },
                  trains => { map { $_ => 0 } @{ $b->{models} } });

    for my $i (0 .. $#reqs - 1) {
        my ($model, $kind) = $reqs[$i] =~ m{^POST /(\w+)/(predict|train)}
            or next;
        $expect{"${kind}s"}{$model}++ if $codes[$i] == 200;
    }

    my $page = File::Temp->new;
    print {$page} $body;
    close $page;

    my $json = JSON::PP->new->canonical->encode(\%expect);
    open my $out, '-|', '/usr/bin/python3', 't/lib/prom_check.py', $json,
        $page->filename
        or die "python3: $!";
    my @lines = <$out>;
    close $out;

    ok(@lines, $block->name . " - prom_check.py ran (exit $?)");

    for (@lines) {
        chomp;
        my ($ok, $what) = /^(ok|not ok) - (.*)$/ or do {
            fail($block->name . " - prom_check.py said: $_");
            next;
        };
        ok($ok eq 'ok', $block->name . " - $what");
    }
});

run_tests();

__DATA__

=== TEST 1: two models and two upstreams: each family once, histograms count what was answered
--- http_config
    learn_model a models/xor.lua seed=1;
    learn_model b models/xor.lua seed=2 checkpoint=html/b.ckpt;
    learn_set $score_b b $arg_a 1;
    upstream back {
        learn_balancer;
        learn_sticky arg=model;
        server 127.0.0.1:1985;
        server 127.0.0.1:1986;
    }
    upstream "we\"ird\\na\nme" {
        learn_balancer;
        server 127.0.0.1:1985;
    }
    server { listen 127.0.0.1:1985; location / { return 200 "x\n"; } }
    server { listen 127.0.0.1:1986; location / { return 200 "y\n"; } }
--- config
    location = /a/train { learn_train a; }
    location = /a/predict { learn_predict a; }
    location = /b/train { learn_train b; }
    location = /b/predict { learn_predict b; }
    location = /b/feedback { learn_feedback b; }
    location = /b/score { return 200 "$score_b"; }
    location /t { proxy_pass http://back; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /a/predict\n{\"x\": [[0, 1]]}",
  "POST /a/train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /b/predict\n{\"x\": [[1, 1], [0, 0]]}",
  "POST /a/predict\n{\"x\": [[0, 1, 2]]}",
  "POST /a/predict\n{\"x\": [[1, 0]]}",
  "POST /a/train\n{\"x\": [[1, 1]], \"y\": [[0]]}",
  "GET /t?model=m1",
  "POST /b/predict\n{\"x\": [[0, 1]]}",
  "POST /a/predict\n{\"x\": [[0, 0]]}",
  "GET /t?model=m2",
  "GET /b/score?a=0.5",
  "POST /b/feedback\n{\"id\": \"0123456789abcdef0123456789abcdef\", \"y\": 1}",
  "GET /status?format=prometheus" ]
--- error_code eval
[ 200, 200, 200, 400, 200, 200, 200, 200, 200, 200, 200, 404, 200 ]
--- no_error_log
[error]
[alert]



=== TEST 2: a step that would diverge is refused and counted; the loss stays NaN
--- http_config
    learn_model diverge models/xor.lua seed=1;
--- config
    location = /diverge/train { learn_train diverge; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /diverge/train\n{\"x\": [[1e30, 1e30]], \"y\": [[3e38]]}",
  "GET /status?format=prometheus" ]
--- error_code eval
[ 422, 200 ]
--- response_body_like eval
[ qr/the step was not applied/,
  qr/\nlearn_model_rejected_steps_total\{model="diverge"\} 1\n/ ]



=== TEST 3: an untrained model's loss is NaN; the content type
--- http_config
    learn_model a models/xor.lua;
--- config
    location = /status { learn_status; }
--- request
GET /status?format=prometheus
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like eval
qr/^# HELP learn_model_step .*\n# TYPE learn_model_step gauge\nlearn_model_step\{model="a"\} 0\n/
