# learn_balancer with its own nginx (2 workers) and concurrent clients:
# the workers learn one shared model; requests in flight make a peer less
# chosen; a burst of first requests does not pile onto a peer never seen;
# max_fails/fail_timeout are honoured; and a reload that changes the peers
# while the old workers still have requests in flight leaves both the old
# and the new model intact (default and zone=NAME zones).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use LearnServer;
use LearnBalancer;

sub peer { my ($st, $port) = @_; $st->{upstreams}{back}{peers}{"127.0.0.1:$port"} }

sub front {
    my ($name, $upstream, %args) = @_;
    return LearnServer->new(
        name    => $name,
        workers => 2,
        http    => "upstream back { $upstream }\n" . ($args{http} // ''),
        server  => 'location / {
                        proxy_pass http://back;
                        add_header X-Worker $pid;
                        add_header X-Predicted $learn_upstream_predicted_ms;
                    }
                    location = /status { learn_status; }',
    )->start;
}

sub no_errors {
    my ($srv, $what) = @_;
    open my $log, '<', $srv->error_log or die $!;
    my @bad = grep { /\[(alert|crit|emerg)\]/ } <$log>;
    is(scalar @bad, 0, "$what: no alert in error.log") or diag(@bad);
}


subtest 'two workers learn one model' => sub {
    my ($f1, $f2, $slow, $p2) = ports(4);
    my $back = backends('lb3-back', [$f1, 'fast1', 0.005],
                        [$f2, 'fast2', 0.005], [$slow, 'slow', 0.1]);
    # a second listener with reuseport: new connections spread over both
    # workers, while one keep-alive connection stays on one
    my $front = front('lb3-front',
        "learn_balancer explore=0;
         server 127.0.0.1:$f1; server 127.0.0.1:$f2; server 127.0.0.1:$slow;",
        http => "server { listen 127.0.0.1:$p2 reuseport;
                          location / { proxy_pass http://back;
                                       add_header X-Worker \$pid; } }");

    my $http = HTTP::Tiny->new;
    my (%worker, $n);
    for (1 .. 20) {
        my $r = get($http, "http://127.0.0.1:$p2/");
        $worker{ $r->[2]{'x-worker'} }++ if $r->[0] == 200;
        $n++;
    }
    my ($w1) = keys %worker;
    is(scalar keys %worker, 1, 'one keep-alive connection: one worker learns');
    is(peer(status($front), $slow)->{picks}, 1,
       '... it tried the slow peer once');

    # fresh connections until the other worker has answered 15 requests
    my $other = 0;
    for (1 .. 300) {
        my $r = get(HTTP::Tiny->new(keep_alive => 0), "http://127.0.0.1:$p2/");
        $n++;
        $other++ if $r->[0] == 200 && $r->[2]{'x-worker'} ne $w1;
        last if $other == 15;
    }
    is($other, 15, 'the other worker answered 15 requests');

    my $st = status($front);
    is(peer($st, $slow)->{picks}, 1,
       'the other worker never tried the slow peer: it used what the first learned');
    is($st->{upstreams}{back}{updates}, $n,
       'every request of both workers updated the one model');

    $front->stop;
    $back->stop;
    no_errors($front, 'workers');
};


subtest 'requests in flight make a peer less chosen' => sub {
    my ($a, $b) = ports(2);
    my $back = backends('lb3-back', [$a, 'a', 0.3], [$b, 'b', 0.3]);
    my $front = front('lb3-front',
        "learn_balancer explore=0; server 127.0.0.1:$a; server 127.0.0.1:$b;");

    # both peers seen first (pairs at once: the second goes to the other)
    my $st;
    for (1 .. 5) {
        burst($front->url('/'), 2);
        $st = status($front);
        last if peer($st, $a)->{picks} && peer($st, $b)->{picks};
    }
    ok(peer($st, $a)->{picks} && peer($st, $b)->{picks},
       'both peers were seen before the burst');

    # two peers alike: ten requests at once, and no answer comes back
    # before all are placed; only the in-flight feature can tell them apart
    my %got;
    $got{ $_->[1] }++ for burst($front->url('/'), 10);
    cmp_ok($got{a} // 0, '>=', 3, "10 at once: a got $got{a}");
    cmp_ok($got{b} // 0, '>=', 3, "10 at once: b got $got{b}");

    $front->stop;
    $back->stop;
};


subtest 'a burst of first requests does not pile onto a new peer' => sub {
    my ($f1, $f2, $slow) = ports(3);
    my $back = backends('lb3-back', [$f1, 'fast1', 0.05],
                        [$f2, 'fast2', 0.05], [$slow, 'slow', 1]);
    my $up = "learn_balancer explore=0;
              server 127.0.0.1:$f1; server 127.0.0.1:$f2;
              server 127.0.0.1:$slow";
    my $front = front('lb3-front', "$up down;");

    my $http = HTTP::Tiny->new;
    is(get($http, $front->url('/'))->[0], 200, 'answered') for 1 .. 10;

    # the slow peer comes in: same peers, so the model is kept
    $front->reload(http => "upstream back { $up; }\n");
    my $st = status($front);
    is($st->{upstreams}{back}{updates}, 10, 'a reload with the same peers keeps the model');
    is(peer($st, $slow)->{picks}, 0, 'the slow peer was never seen');

    my %got;
    $got{ $_->[1] }++ for burst($front->url('/'), 12);
    cmp_ok($got{slow} // 0, '>=', 1, 'the new peer is tried');
    cmp_ok($got{slow} // 0, '<=', 3,
           'but 12 requests at once do not all wait for its first answer');
    is(($got{fast1} // 0) + ($got{fast2} // 0) + ($got{slow} // 0), 12,
       'every request answered');

    $front->stop;
    $back->stop;
};


subtest 'max_fails and fail_timeout' => sub {
    my ($a, $b) = ports(2);
    my $back = backends('lb3-back', [$b, 'b', 0]);
    my $front = front('lb3-front',
        "zone back 64k;
         learn_balancer explore=1;
         server 127.0.0.1:$a max_fails=1 fail_timeout=2s;
         server 127.0.0.1:$b;");

    # a is not listening: its one failure takes it out for 2 s
    my $t0 = time;
    my $http = HTTP::Tiny->new;
    my @r = map { get($http, $front->url('/')) } 1 .. 20;
    is(scalar(grep { $_->[0] == 200 && $_->[1] eq 'b' } @r), 20,
       'every request answered by b');
    is(peer(status($front), $a)->{picks}, 1, 'a was tried once, then skipped');

    # a comes up, but fail_timeout has not passed yet
    my $back_a = backends('lb3-back-a', [$a, 'a', 0]);
    @r = map { get($http, $front->url('/')) } 1 .. 10;
    ok(time - $t0 < 2, 'still within fail_timeout') or diag(time - $t0);
    is(scalar(grep { $_->[1] eq 'a' } @r), 0, 'a is still skipped');
    is(peer(status($front), $a)->{picks}, 1, '... not even picked');

    # nginx counts fail_timeout in whole seconds (ngx_time()): the peer
    # is out for more than 2 s and at most 3 s
    sleep 3.2 - (time - $t0);
    @r = map { get($http, $front->url('/')) } 1 .. 20;
    cmp_ok(scalar(grep { $_->[1] eq 'a' } @r), '>=', 3,
           'after fail_timeout a is back (explore=1: random between a and b)');

    $front->stop;
    $back->stop;
    $back_a->stop;
};


for my $zone ('', 'zone=lb') {
    subtest "reload with other peers while requests are in flight"
            . ($zone ? " ($zone)" : '') => sub {
        my @p = ports(5);
        my $back = backends('lb3-back', map { [$p[$_], "b$_", 0] } 0 .. 4);

        my $sticky = $zone ? 'learn_sticky header=X-Key zone=pins:64k;'
                           : 'learn_sticky header=X-Key;';
        my $front = front('lb3-front',
            "learn_balancer $zone; $sticky
             server 127.0.0.1:$p[0]; server 127.0.0.1:$p[1];
             server 127.0.0.1:$p[2];");

        # six requests in flight (1 s, /slow) on the old workers during the
        # reload
        my $pid = fork // die;
        if ($pid == 0) {
            my @r = burst($front->url('/slow'), 6, 'X-Key' => 'k1');
            POSIX::_exit(scalar(grep { $_->[0] == 200 } @r) == 6 ? 0 : 1);
        }
        sleep 0.4;

        # same zone size (a page holds 2 or 3 peers), fewer peers
        $front->reload(http => "upstream back { learn_balancer $zone; $sticky
                                     server 127.0.0.1:$p[3];
                                     server 127.0.0.1:$p[4]; }\n");
        waitpid $pid, 0;
        is($?, 0, 'the requests in flight during the reload were answered');

        my $http = HTTP::Tiny->new;
        my @r = map { get($http, $front->url('/'), 'X-Key' => "k$_") } 1 .. 10;
        is(scalar(grep { $_->[0] == 200 && $_->[1] =~ /^b[34]$/ } @r), 10,
           'the new peers answer');
        is(scalar(grep { $_->[2]{'x-predicted'} !~ /^\d{1,4}\.\d{3}$/ } @r), 0,
           'predictions are sane (' . join(' ', map { $_->[2]{'x-predicted'} } @r) . ')');

        my $st = status($front)->{upstreams}{back};
        is($st->{updates}, 10, 'the new model learned from the new requests only');
        for my $i (3, 4) {
            is($st->{peers}{"127.0.0.1:$p[$i]"}{in_flight}, 0,
               "new peer $i: nothing in flight (the old workers left it alone)");
        }
        is($st->{peers}{"127.0.0.1:$p[3]"}{picks}
           + $st->{peers}{"127.0.0.1:$p[4]"}{picks}, 10, 'picks add up');
        is($st->{sticky}{keys}, 10, 'the pins are the new ones');

        open my $log, '<', $front->error_log or die $!;
        ok(scalar(grep { /the peers changed, learning afresh/ } <$log>),
           'the change is logged');

        $front->stop;
        $back->stop;
        no_errors($front, 'reload');
    };
}

done_testing();
