# Every tensor encoding of the wire format, and replies in the request's
# encoding.  Bodies marked _np come from Python's msgpack_numpy.packb().

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';
use LearnBody;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config",
                      "learn_model xor models/xor.lua seed=1;\n"
                      . "learn_model digits models/digits.lua seed=1;\n")
        unless defined $block->http_config;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location = /xor/train { learn_train xor; }
    location = /xor/predict { learn_predict xor; }
    location = /digits/train { learn_train digits; }
    location = /digits/predict { learn_predict digits; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: msgpack-numpy with bin keys in, msgpack-numpy with bin keys out
--- more_headers
Content-Type: application/msgpack
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_np.mp")
--- error_code: 200
--- response_headers
Content-Type: application/msgpack
--- response_body_like eval
# {"y": {b"nd": true, b"type": "<f4", ..., b"shape": [4, 1], b"data": 16 bytes}}
qr/^\x81\xa1y\x85.*\xc4\x02nd\xc3.*\xc4\x04type\xa3<f4.*\xc4\x05shape\x92\x04\x01\xc4\x04data\xc4\x10.{16}$/s
--- no_error_log
[error]



=== TEST 2: a bare msgpack-numpy tensor is x
--- more_headers
Content-Type: application/x-msgpack
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_bare_np.mp")
--- error_code: 200
--- response_body_like eval
qr/\xc4\x05shape\x92\x01\x01/s



=== TEST 3: msgpack-numpy map with str keys and "<i4" data
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_i4_np_str.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_body_like eval
qr/shape\x92\x04\x01/s



=== TEST 4: float64 msgpack-numpy is converted
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_f8_np.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_body_like eval
qr/\xa3<f4.*shape\x92\x04\x01/s



=== TEST 5: the {"shape", "dtype", "data"} map in, the same form out
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_raw.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_body_like eval
qr/^\x81\xa1y\x83.*\xa5shape\x92\x04\x01.*\xa5dtype\xa7float32.*\xa4data\xc4\x10.{16}/s



=== TEST 6: train with float64 x and float32 y in the raw form
--- request eval
"POST /xor/train\n" . LearnBody::fixture("xor_train_raw_f8.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_headers
Content-Type: application/msgpack
--- response_body_like eval
# {"loss": float64, "step": 1}
qr/^\x82\xa4loss\xcb.{8}\xa4step\x01$/s



=== TEST 7: nested msgpack arrays in, nested arrays out
--- request eval
"POST /xor/predict\n" . LearnBody::mp({x => [[0, 0], [1, 0.5]]})
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_body_like eval
# {"y": [[f], [f]]}, floats as float32 or float64
qr/^\x81\xa1y\x92\x91[\xca\xcb].+\x91[\xca\xcb].+$/s



=== TEST 8: msgpack in, JSON out with Accept: application/json
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_np.mp")
--- more_headers
Content-Type: application/msgpack
Accept: application/json
--- error_code: 200
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"y": ?\[\[[^\]]+\], ?\[[^\]]+\], ?\[[^\]]+\], ?\[[^\]]+\]\]\}$



=== TEST 9: JSON {"shape", "data"} form
--- request
POST /xor/predict
{"x": {"shape": [2, 2], "data": [0, 1, 1, 0]}}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 200
--- response_body_like: ^\{"y": ?\[\[[^\]]+\], ?\[[^\]]+\]\]\}$



=== TEST 10: class-index targets as an int64 msgpack-numpy tensor
--- request eval
"POST /digits/train\n" . LearnBody::fixture("digits_train_np.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 200
--- response_body_like eval
qr/\xa4step\x01$/s



=== TEST 11: class-index targets as a JSON list, one-hot targets too
--- request eval
[ "POST /digits/train\n" . '{"x": [' . CORE::join(",", ("[" . CORE::join(",", (0.5) x 64) . "]") x 2) . '], "y": [3, 7]}',
  "POST /digits/train\n" . '{"x": [' . CORE::join(",", ("[" . CORE::join(",", (0.5) x 64) . "]") x 1) . '], "y": [[0,0,0,1,0,0,0,0,0,0]]}' ]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
[ qr/"step": ?1\}/, qr/"step": ?2\}/ ]
