# learn_counter's window slides: counts fade as their window passes, and
# two workers share one count per key.  The waits are what is tested.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use LearnServer;
use Time::HiRes qw(sleep time);

my $spread = LearnServer::free_port();

my $srv = LearnServer->new(
    name    => 'counter',
    workers => 2,
    http    => "learn_counter \$hits \$arg_who window=3s;
                server {
                    listen 127.0.0.1:$spread reuseport;
                    location = /t {
                        add_header X-Worker \$pid;
                        return 200 \"\$hits\";
                    }
                }",
    server  => 'location = /t { return 200 "$hits"; }',
)->start;

my $http = LearnClient->new;

sub hit {
    my ($who) = @_;
    my $r = $http->get("http://127.0.0.1:$spread/t?who=$who",
                       { headers => { Connection => 'close' } });
    return ($r->{content}, $r->{headers}{'x-worker'});
}

# twenty requests over both workers count as twenty
my (%workers, $n);
for (1 .. 20) {
    my ($c, $w) = hit('shared');
    $n = $c;
    $workers{$w}++;
}
is($n, 20, 'twenty requests of one key count 20 across the workers');
is(scalar keys %workers, 2, 'and both workers answered some')
    or diag explain \%workers;

# two windows later nothing is left of them
sleep 6.1;
is((hit('shared'))[0], 1, 'after two windows the count starts again');

# half a window into the next one, about half the previous one remains
my $start = time;
hit('half') for 1 .. 10;
# the next window plus half of it, from the first hit (which opened the
# key's window): 1 + 10 / 2 when on time, more than 1 up to 1.3 s late
sleep 4.5 - (time - $start);
my ($c) = hit('half');
cmp_ok($c, '>', 1, "half a window on, part of the previous count remains "
       . "($c)");
cmp_ok($c, '<', 11, 'but not all of it');

$srv->stop;
done_testing();
