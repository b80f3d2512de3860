package LearnClient;

# A keep-alive HTTP/1.1 client for the suites that send thousands of
# requests.  Each request goes out in one write with TCP_NODELAY: clients
# that write headers and body separately (HTTP::Tiny) wait out the
# peer's 40 ms delayed ACK on every request.  Returns what HTTP::Tiny
# returns: {status, headers (lower-case names), content}.

use strict;
use warnings;

use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

sub new {
    my ($class, %args) = @_;
    return bless { timeout => $args{timeout} || 10 }, $class;
}

sub get  { $_[0]->request('GET', $_[1], $_[2]) }
sub post { $_[0]->request('POST', $_[1], $_[2]) }

sub request {
    my ($self, $method, $url, $args) = @_;
    my ($hostport, $path) = $url =~ m{^http://([^/]+)(/.*)$} or die "url $url";
    my $body = $args->{content} // '';
    my $headers = $args->{headers} || {};

    for my $try (1, 2) {
        my $s = $self->{conn}{$hostport} ||= do {
            my $c = IO::Socket::INET->new(PeerAddr => $hostport,
                                          Timeout => $self->{timeout})
                or die "connect $hostport: $!";
            setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
            binmode $c;
            $c;
        };

        my $req = "$method $path HTTP/1.1\r\nHost: $hostport\r\n"
                . join('', map { "$_: $headers->{$_}\r\n" } sort keys %$headers)
                . "Content-Length: " . length($body) . "\r\n\r\n" . $body;

        my $res = eval { $self->_exchange($s, $req) };
        return $res if $res;

        # the server closed a kept-alive connection: once more, afresh
        delete $self->{conn}{$hostport};
        die $@ if $try == 2;
    }
}

sub _exchange {
    my ($self, $s, $req) = @_;
    print {$s} $req or die "write: $!";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($s, $head, 4096, length $head);
        die "closed\n" unless $n;
    }
    my ($h, $rest) = split /\r\n\r\n/, $head, 2;
    my ($status_line, @lines) = split /\r\n/, $h;
    my ($status) = $status_line =~ m{^HTTP/1\.\d (\d+)} or die "bad status";
    my %headers = map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k, $v) } @lines;

    if (lc($headers{'transfer-encoding'} // '') eq 'chunked') {
        # lua-nginx-module's answers: read to the last chunk, then join
        until ($rest =~ /(?:^|\r\n)0\r\n\r\n$/) {
            my $n = sysread($s, $rest, 4096, length $rest);
            die "closed\n" unless $n;
        }
        my $body = '';
        while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $size = hex $1;
            last if $size == 0;
            $body .= substr($rest, 0, $size, '');
            $rest =~ s/^\r\n//;
        }
        $rest = $body;

    } else {
        my $len = $headers{'content-length'} // 0;
        while (length $rest < $len) {
            my $n = sysread($s, $rest, $len - length $rest, length $rest);
            die "closed\n" unless $n;
        }
    }
    if (lc($headers{connection} // '') eq 'close') {
        close $s;
        delete $self->{conn};
    }
    return { status => $status, headers => \%headers, content => $rest };
}

# A POST on a fresh connection (Connection: close), sent at once and not
# waited for: read the reply later with read_all().  For requests that
# must be in flight together.
sub raw_post {
    my ($srv, $path, $body, $type) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $srv->port)
        or die "connect: $!";
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;
    print {$s} "POST $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             . "Content-Type: " . ($type || 'application/msgpack') . "\r\n"
             . "Content-Length: " . length($body) . "\r\n\r\n" . $body;
    return $s;
}

# the whole reply of a raw_post(), status line and headers included
sub read_all {
    my ($s) = @_;
    local $/;
    my $r = <$s>;
    return $r // '';
}

1;
