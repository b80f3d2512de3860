# learn_weights: export, import of weights made by numpy (PyTorch layout)
# matching numpy's own forward pass, and imports that are refused whole.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use LearnClient;
use LearnServer;
use LearnBody;

my $srv = LearnServer->new(
    name    => 'weights',
    workers => 2,
    http    => 'learn_model xor models/xor.lua seed=1;',
    server  => 'location = /predict { learn_predict xor; }
                location = /weights { learn_weights xor; }
                location = /status { learn_status; }',
)->start;

my $http = LearnClient->new;
my $expected = json_decode(fixture('xor_weights_expected.json'));

sub predict_json {
    my $r = $http->post($srv->url('/predict'), {
        headers => { 'Content-Type' => 'application/json' },
        content => JSON::PP->new->encode({ x => $expected->{x} }),
    });
    return json_decode($r->{content})->{y};
}

sub put {
    my ($content, $type) = @_;
    return $http->request('PUT', $srv->url('/weights'), {
        headers => { 'Content-Type' => $type || 'application/msgpack' },
        content => $content,
    });
}

# export: msgpack-numpy by default, every parameter with PyTorch's shape
my $r = $http->get($srv->url('/weights'));
is($r->{status}, 200, 'GET exports');
is($r->{headers}{'content-type'}, 'application/msgpack', 'as msgpack');
my $json = json_decode($http->get($srv->url('/weights'),
    { headers => { Accept => 'application/json' } })->{content});
is_deeply([sort keys %$json], ['0.bias', '0.weight', '2.bias', '2.weight'],
          'PyTorch parameter names');
is(scalar @{ $json->{'0.weight'} }, 20, '0.weight has 20 rows');
is(scalar @{ $json->{'0.weight'}[0] }, 2, 'of 2 columns ([out, in])');

my $before = predict_json();

# refused imports change nothing
$r = put(mp({ '0.weight' => [[1, 2]] }));
is($r->{status}, 400, 'a wrong shape is refused');
like(json_decode($r->{content})->{error},
     qr/^"0\.weight" has shape \[1, 2\], the model's is \[20, 2\]$/,
     'naming the parameter and both shapes');
$r = put(mp({ '0.bias' => [1, 2, 3] }));
is($r->{status}, 400, 'a 1-D parameter of the wrong length is refused');
like(json_decode($r->{content})->{error},
     qr/^"0\.bias" has shape \[3\], the model's is \[20\]$/,
     'with the real 1-D shapes');
$r = put(fixture('xor_weights_np.mp') =~ s/2\.bias/9.bias/r);
is($r->{status}, 400, 'an unknown name is refused');
like(json_decode($r->{content})->{error}, qr/no parameter "9\.bias"/,
     'naming it');
$r = put(mp({ '0.weight' => [([0.5, 0.5]) x 20] }));
is($r->{status}, 400, 'a partial import is refused');
like(json_decode($r->{content})->{error}, qr/^missing "0\.bias"/,
     'naming the first missing parameter');
is_deeply(predict_json(), $before, 'refused imports changed nothing');

# the numpy weights load as they are and predict like numpy
$r = put(fixture('xor_weights_np.mp'));
is($r->{status}, 200, 'numpy weights import') or diag($r->{content});
my $y = predict_json();
my $worst = 0;
for my $i (0 .. $#$y) {
    my $d = abs($y->[$i][0] - $expected->{y}[$i][0]);
    $worst = $d if $d > $worst;
}
cmp_ok($worst, '<', 1e-5, "predictions match numpy's forward pass (max diff $worst)");

# and export again: the same values came back out
my $out = json_decode($http->get($srv->url('/weights'),
    { headers => { Accept => 'application/json' } })->{content});
my $in = mp_unpack(fixture('xor_weights_np.mp'));
# the fixture's bias 2.bias as float32 bytes
my @b = unpack('f<', $in->{'2.bias'}{data});
cmp_ok(abs($out->{'2.bias'}[0] - $b[0]), '<', 1e-7, 'export returns the imported values');

# a NaN in one parameter: refused, and the model keeps its weights
my $bad = mp_unpack(fixture('xor_weights_np.mp'));
my @w = unpack('f<*', $bad->{'0.weight'}{data});
$w[5] = 9**9**9 / 9**9**9;    # NaN
$bad->{'0.weight'}{data} = pack('f<*', @w);
$r = put(Data::MessagePack->new->prefer_integer->pack($bad));
is($r->{status}, 400, 'weights with a NaN are refused');
like(json_decode($r->{content})->{error},
     qr/"0\.weight" has a non-finite value \(NaN or Inf\) at element 5/,
     'naming the parameter and the element');
my $y2 = predict_json();
is_deeply($y2, $y, 'the model still predicts with the imported weights');

$r = $http->request('DELETE', $srv->url('/weights'));
is($r->{status}, 405, 'DELETE is 405');

$srv->stop;
done_testing();
