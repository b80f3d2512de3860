# learn_sticky pins over time, with its own nginx (2 workers): a pin
# unused for "timeout" expires; a full table evicts the least recently
# used pins; a pinned peer at max_conns keeps its keys (one request goes
# elsewhere); a key pinned to a backup peer stays there when the primary
# comes back, and moves back when the backup fails.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);
use LearnServer;
use LearnBalancer;

sub front {
    my ($name, $upstream) = @_;
    return LearnServer->new(
        name    => $name,
        workers => 2,
        http    => "upstream back { $upstream }",
        server  => 'location / {
                        proxy_pass http://back;
                        add_header X-Pin $learn_upstream_pin;
                    }
                    location = /status { learn_status; }',
    )->start;
}

sub ask {
    my ($srv, $key) = @_;
    my $r = get(HTTP::Tiny->new, $srv->url('/'), 'X-Key' => $key);
    return "$r->[0] $r->[1] " . ($r->[2]{'x-pin'} // '-');
}

sub moves_logged {
    my ($srv) = @_;
    open my $log, '<', $srv->error_log or die $!;
    return grep { /\[info\] .*learn_sticky: key "[^"]+" moved to/ } <$log>;
}


subtest 'a pin unused for timeout expires' => sub {
    my @p = ports(3);
    my $back = backends('lb4-back', map { [$p[$_], "b$_", 0] } 0 .. 2);
    my $front = front('lb4-front',
        "learn_balancer explore=1;
         learn_sticky header=X-Key timeout=1s;
         server 127.0.0.1:$p[0]; server 127.0.0.1:$p[1];
         server 127.0.0.1:$p[2];");

    like(ask($front, 'k1'), qr/^200 b\d new$/, 'k1 placed');
    like(ask($front, 'k2'), qr/^200 b\d new$/, 'k2 placed');
    like(ask($front, 'k1'), qr/^200 b\d hit$/, 'k1 pinned');
    is(status($front)->{upstreams}{back}{sticky}{keys}, 2, 'two pins');

    sleep 1.3;
    like(ask($front, 'k3'), qr/^200 b\d new$/, 'k3 placed after the timeout');
    my $st = status($front)->{upstreams}{back}{sticky};
    is($st->{keys}, 1, 'placing k3 dropped the expired k1 and k2');
    is($st->{evicted}, 0, '... which is not an eviction');
    like(ask($front, 'k1'), qr/^200 b\d new$/, 'k1 is placed anew');

    $front->stop;
    $back->stop;
};


subtest 'a full table evicts the least recently used pins' => sub {
    my @p = ports(3);
    my $back = backends('lb4-back', map { [$p[$_], "b$_", 0] } 0 .. 2);
    my $front = front('lb4-front',
        "learn_balancer explore=1;
         learn_sticky header=X-Key zone=lb4_pins:32k;
         server 127.0.0.1:$p[0]; server 127.0.0.1:$p[1];
         server 127.0.0.1:$p[2];");

    my $http = HTTP::Tiny->new;
    my $pin = sub { get($http, $front->url('/'), 'X-Key' => $_[0])->[2]{'x-pin'} };

    my ($k1) = ask($front, 'keep') =~ /^200 (b\d) new$/;
    ok($k1, 'the kept key is placed');
    my (%pins, $bad);
    for my $i (1 .. 600) {
        $pins{ $pin->("x$i") }++;
        # "keep" is used all along: the least recently used go first
        $bad++ if $i % 20 == 0 && $pin->('keep') ne 'hit';
    }
    is($pins{new}, 600, '600 keys placed');
    ok(!$bad, 'the key in use stayed pinned all along');

    my $st = status($front)->{upstreams}{back}{sticky};
    cmp_ok($st->{evicted}, '>', 0, "the table evicted ($st->{evicted})");
    cmp_ok($st->{keys}, '<', 601, "it holds $st->{keys} keys");
    is($pin->('x600'), 'hit', 'the newest key is still pinned');
    is($pin->('x1'), 'new', 'the oldest was evicted');
    like(ask($front, 'keep'), qr/^200 $k1 hit$/, 'the kept key is on its peer');

    $front->stop;
    $back->stop;
};


subtest 'a pinned peer at max_conns keeps its keys' => sub {
    my @p = ports(3);
    my $back = backends('lb4-back', map { [$p[$_], "b$_", 0.5] } 0 .. 2);
    my $front = front('lb4-front',
        "zone back 64k;
         learn_balancer explore=0;
         learn_sticky header=X-Key;
         server 127.0.0.1:$p[0] max_conns=1;
         server 127.0.0.1:$p[1] max_conns=1;
         server 127.0.0.1:$p[2] max_conns=1;");

    my ($at) = ask($front, 'k') =~ /^200 (b\d) new$/;
    ok($at, "k placed on $at");

    my @r = burst($front->url('/'), 2, 'X-Key' => 'k');
    my @where = sort map { "$_->[1] $_->[2]{'x-pin'}" } @r;
    is(scalar(grep { $_->[0] == 200 } @r), 2, 'both answered');
    is(scalar(grep { $_ eq "$at hit" } @where), 1, "one on $at (@where)");
    is(scalar(grep { /^b\d busy$/ && !/^$at/ } @where), 1,
       'the other on another peer, the key not moved');

    like(ask($front, 'k'), qr/^200 $at hit$/, "k is still on $at");
    my $st = status($front)->{upstreams}{back};
    is($st->{moves}, 0, 'no move');
    is($st->{peers}{"127.0.0.1:$p[substr $at, 1]"}{pins}, 1, "$at holds the pin");
    is(scalar(moves_logged($front)), 0, 'no move logged');

    $front->stop;
    $back->stop;
};


subtest 'a key pinned to a backup peer stays there while it is usable' => sub {
    my ($a, $b) = ports(2);
    my $back_b = backends('lb4-back-b', [$b, 'b', 0]);
    my $front = front('lb4-front',
        "learn_balancer;
         learn_sticky header=X-Key;
         server 127.0.0.1:$a max_fails=1 fail_timeout=1s;
         server 127.0.0.1:$b backup;");

    # the primary is down: k fails over to the backup
    my $t0 = time;
    is(ask($front, 'k'), '200 b moved', 'a is down: k moves to the backup b');

    # the primary comes back (fail_timeout: 1-2 s in whole seconds)
    my $back_a = backends('lb4-back-a', [$a, 'a', 0]);
    sleep 2.2 - (time - $t0);
    is(ask($front, 'k2'), '200 a new', 'a is back: a new key goes to the primary');
    is(ask($front, 'k'), '200 b hit', 'k stays on the backup, where its state is');
    is(ask($front, 'k'), '200 b hit', '... every time');

    # the backup goes away: k moves to the primary, no client error
    $back_b->stop;
    is(ask($front, 'k'), '200 a moved', 'b is down: k moves back to a');
    is(ask($front, 'k'), '200 a hit', '... and stays');

    my @moves = moves_logged($front);
    is(scalar @moves, 2, 'both moves logged at info') or diag(@moves);
    my $st = status($front)->{upstreams}{back};
    is($st->{moves}, 2, 'learn_status counts two moves');
    is($st->{peers}{"127.0.0.1:$a"}{pins}, 2, 'a holds both keys');

    $front->stop;
    $back_a->stop;
};

done_testing();
