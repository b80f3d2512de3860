# learn_sticky across two workers with real backends (separate nginx
# processes): concurrent clients always reach the peer their key is
# pinned to; after a backend is stopped its keys move (one info line
# each), clients see no error, and the other keys stay where they were.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use HTTP::Tiny;
use POSIX ();
use LearnServer;

my $base = 1995;
my @names = qw(b1 b2 b3);
my %back;
for my $i (0 .. 2) {
    my $n = $names[$i];
    $back{$n} = LearnServer->new(
        name    => "lb-$n",
        port    => $base + 1 + $i,
        workers => 1,
        server  => "location / { return 200 \"$n\\n\"; }",
    )->start;
}

my $front = LearnServer->new(
    name    => 'lb-front',
    port    => $base,
    workers => 2,
    http    => 'upstream back {
                    learn_balancer explore=1;
                    learn_sticky header=X-Model;
                    server 127.0.0.1:' . ($base + 1) . ';
                    server 127.0.0.1:' . ($base + 2) . ';
                    server 127.0.0.1:' . ($base + 3) . ';
                }',
    server  => 'location / { proxy_pass http://back; }
                location = /status { learn_status; }',
)->start;

my @keys = map { "model-$_" } 1 .. 30;

sub ask {
    my ($http, $key) = @_;
    my $r = $http->get($front->url('/'), { headers => { 'X-Model' => $key } });
    my $body = $r->{content} // '';
    chomp $body;
    return ($r->{status}, $body);
}

# every key once, in order: where each one lands
sub place {
    my $http = HTTP::Tiny->new;
    my (%at, @bad);
    for my $k (@keys) {
        my ($status, $body) = ask($http, $k);
        push @bad, "$k: $status" if $status != 200;
        $at{$k} = $body;
    }
    return (\%at, \@bad);
}

# 4 clients x 5 rounds over every key at once: answers not 200, and
# answers from another peer than $at says
sub hammer {
    my ($at, $tag) = @_;
    my @pids;
    for my $c (1 .. 4) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $http = HTTP::Tiny->new(keep_alive => $c % 2);
            my ($errors, $moved) = (0, 0);
            for my $round (1 .. 5) {
                for my $k ($c % 2 ? @keys : reverse @keys) {
                    my ($status, $body) = ask($http, $k);
                    $errors++ if $status != 200;
                    $moved++ if $status == 200 && $body ne $at->{$k};
                }
            }
            open my $fh, '>', "$front->{prefix}/$tag.$c" or die $!;
            print $fh "$errors $moved";
            close $fh;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
    my ($errors, $moved) = (0, 0);
    for my $c (1 .. 4) {
        open my $fh, '<', "$front->{prefix}/$tag.$c" or die $!;
        my ($e, $m) = split ' ', scalar <$fh>;
        $errors += $e;
        $moved += $m;
    }
    return ($errors, $moved);
}

my ($at, $bad) = place();
is("@$bad", '', 'every key was placed');
my %count;
$count{$_}++ for values %$at;
cmp_ok(scalar keys %count, '>=', 2, 'keys are spread over several peers');

my ($errors, $moved) = hammer($at, 'before');
is($errors, 0, '600 concurrent requests on two workers: no error');
is($moved, 0, 'every request reached the peer its key is pinned to');

# stop the backend that holds the most keys
my ($victim) = sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count;
my @lost = grep { $at->{$_} eq $victim } @keys;
$back{$victim}->stop;

my ($after, $bad2) = place();
is("@$bad2", '', "backend $victim stopped: every key still answered 200");
is(scalar(grep { $after->{$_} eq $victim } @keys), 0,
   "no key is on the stopped backend");
is(scalar(grep { $at->{$_} ne $victim && $after->{$_} ne $at->{$_} } @keys),
   0, 'keys of the live backends did not move');

($errors, $moved) = hammer($after, 'after');
is($errors, 0, 'after the stop, 600 concurrent requests: no error');
is($moved, 0, 'moved keys stay on their new peer');

open my $log, '<', $front->error_log or die $!;
my %logged;
while (<$log>) {
    $logged{$1}++
        if /\[info\] .*learn_sticky: key "([^"]+)" moved to 127\.0\.0\.1:\d+ in upstream "back"/;
}
close $log;
is(join(',', sort keys %logged), join(',', sort @lost),
   'each moved key was logged at info level');
is(scalar(grep { $_ != 1 } values %logged), 0, '... once');

my $status = HTTP::Tiny->new->get($front->url('/status'))->{content};
my $port = $back{$victim}->port;
like($status, qr/"moves": ${\ scalar @lost}, /, 'learn_status counts the moves');
like($status, qr/"127\.0\.0\.1:$port": \{"picks": \d+, "in_flight": 0, "explored": \d+, "failures": [1-9]\d*, "pins": 0, /,
     'the stopped peer holds no pin and shows its failures');

$front->stop;
$_->stop for values %back;

done_testing();
