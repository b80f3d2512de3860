package LearnBalancer;

# Helpers for the balancer suites that start their own nginx (t/083,
# t/084): echo backends on free 127.0.0.1 ports, a burst of concurrent
# requests from forked clients, and learn_status decoded.

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep);
use LearnServer;

our @EXPORT = qw(ports backends burst get status);

our $ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

# n distinct ports nothing listens on (all held open while choosing)
sub ports {
    my ($n) = @_;
    my @s = map {
        IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                              Listen => 1, ReuseAddr => 1)
            or die "no free port: $!"
    } 1 .. $n;
    my @ports = map { $_->sockport } @s;
    close $_ for @s;
    return @ports;
}

# backends(NAME, [PORT, BODY, SLEEP], ...): one nginx (1 worker) with a
# server per backend answering "BODY\n" after SLEEP seconds (echo_sleep),
# after 1 s on /slow, and "BODY $connection_requests\n" on /conn
sub backends {
    my ($name, @specs) = @_;
    my $http = '';
    for my $s (@specs) {
        my ($port, $body, $delay) = @$s;
        my $sleep = $delay ? "echo_sleep $delay; " : '';
        $http .= "server { listen 127.0.0.1:$port;"
               . " location / { $sleep echo $body; }"
               . " location /slow { echo_sleep 1; echo $body; }"
               . " location /conn { echo \"$body \$connection_requests\"; } }\n";
    }
    return LearnServer->new(
        name    => $name,
        workers => 1,
        main    => "load_module $ECHO;",
        http    => $http,
        server  => 'location / { return 404; }',
    )->start;
}

# one GET: [status, body without its newline, headers]
sub get {
    my ($http, $url, %headers) = @_;
    my $r = $http->get($url, { headers => \%headers });
    my $body = $r->{content} // '';
    chomp $body;
    return [ $r->{status}, $body, $r->{headers} ];
}

# n clients at once, each one GET (a fresh connection): their answers
sub burst {
    my ($url, $n, %headers) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my @pids;
    for my $c (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $r = get(HTTP::Tiny->new(keep_alive => 0), $url, %headers);
            open my $fh, '>', "$dir/$c" or POSIX::_exit(1);
            print $fh join("\t", $r->[0], $r->[1],
                           map { "$_=$r->[2]{$_}" } sort keys %{ $r->[2] });
            close $fh;
            POSIX::_exit(0);    # no DESTROY: the parent owns nginx
        }
        push @pids, $pid;
        sleep 0.005;
    }
    waitpid $_, 0 for @pids;
    my @out;
    for my $c (1 .. $n) {
        open my $fh, '<', "$dir/$c" or die "client $c left no answer";
        my ($status, $body, @h) = split /\t/, scalar <$fh>;
        push @out, [ $status, $body, { map { split /=/, $_, 2 } @h } ];
    }
    return @out;
}

# learn_status of a server, decoded
sub status {
    my ($srv) = @_;
    my $r = HTTP::Tiny->new->get($srv->url('/status'));
    die "status: $r->{status}" unless $r->{status} == 200;
    return JSON::PP::decode_json($r->{content});
}

1;
