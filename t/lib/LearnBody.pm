package LearnBody;

# Request bodies for the suites: fixtures written by real Python clients
# (t/fixtures/gen_bodies.py) and MessagePack / JSON built here.

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use Data::MessagePack;
use JSON::PP;

our @EXPORT = qw(fixture mp mp_unpack json_decode post_mp post_json
                 raw_tensor);

my $dir = File::Spec->rel2abs(dirname(__FILE__) . '/../fixtures');
my $packer = Data::MessagePack->new->canonical;

# the bytes of t/fixtures/NAME
sub fixture {
    my ($name) = @_;
    open my $fh, '<:raw', "$dir/$name" or die "$dir/$name: $!";
    local $/;
    my $bytes = <$fh>;
    close $fh;
    return $bytes;
}

sub mp { return $packer->pack($_[0]) }

sub mp_unpack { return Data::MessagePack->new->unpack($_[0]) }

sub json_decode { return JSON::PP->new->decode($_[0]) }

# "POST URI\nBODY" for --- request eval, bodies being binary-safe
sub post_mp { my ($uri, $data) = @_; return "POST $uri\n" . mp($data) }

sub post_json {
    my ($uri, $data) = @_;
    return "POST $uri\n" . JSON::PP->new->canonical->encode($data);
}

# a {"shape", "dtype", "data": bin} tensor, which Data::MessagePack cannot
# write (it has no bin type): bytes by hand
sub raw_tensor {
    my ($shape, $dtype, $data) = @_;
    return "\x83\xa5shape" . pack('C', 0x90 + @$shape)
         . join('', map { pack('Cn', 0xcd, $_) } @$shape)
         . "\xa5dtype" . pack('C', 0xa0 + length $dtype) . $dtype
         . "\xa4data\xc6" . pack('N', length $data) . $data;
}

1;
