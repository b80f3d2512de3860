# learn_batch timeout=: a batch stops waiting when nothing more can
# arrive. With each of the worker's connections already in the batch, a
# lone client gets its answer at once, not after the timeout; with
# another client connected (idle), the batch waits for it, up to the
# timeout.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use HTTP::Tiny;
use Time::HiRes qw(time sleep);
use LearnServer;
use LearnClient;

my $srv = LearnServer->new(
    name    => 'batch-cut',
    workers => 1,
    http    => 'learn_model xor models/xor.lua seed=1;',
    server  => 'location = /batched { learn_predict xor;
                                      learn_batch max=64 timeout=3s; }
                location = /status { learn_status; }',
)->start;

my $http = HTTP::Tiny->new(timeout => 10);

sub predict {
    my $t0 = time;
    my $r = $http->post($srv->url('/batched'), {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"x": [[0, 1]]}',
    });
    return ($r->{status}, time - $t0, $r->{content});
}

my ($status, $took, $body) = predict();
is($status, 200, 'a lone predict is answered');
like($body, qr/"y"/, 'with y');
cmp_ok($took, '<', 1.5,
       sprintf('at once (%.3f s), not after the 3 s timeout', $took));

# an idle keepalive connection: it could still send a request
my $idle = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $srv->port)
    or die "connect: $!";
print $idle "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
my $got = '';
while ($got !~ /\r\n\r\n/) {
    sysread($idle, $got, 4096, length $got) or last;
}
like($got, qr/^HTTP\/1\.1 200/, 'an idle client is connected');

($status, $took) = predict();
is($status, 200, 'with an idle client connected, the predict is answered');
cmp_ok($took, '>', 2.5,
       sprintf('after waiting for the timeout (%.3f s)', $took));

close $idle;
$srv->stop;
done_testing;
