# Bad requests get the documented status and a JSON {"error": ...} that
# says what was wrong, one info line in error.log, and change nothing.

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
    location = /status { learn_status; }
_EOC_
    $block->set_value("no_error_log", "[error]\n[crit]\n[alert]\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: GET on a train location is 405 with Allow: POST
--- request
GET /xor/train
--- error_code: 405
--- response_headers
Allow: POST
Content-Type: application/json
--- response_body
{"error": "method GET is not allowed, use POST"}
--- error_log
learn: 405



=== TEST 2: unknown content type is 415
--- request
POST /xor/predict
x=1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- response_body_like: ^\{"error": "content type \\"application/x-www-form-urlencoded\\" is not supported



=== TEST 3: a body that is not MessagePack is 400
--- request eval
"POST /xor/predict\n\xc1\xc1\xc1"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body_like: ^\{"error": "[^"]+"\}$



=== TEST 4: invalid JSON is 400
--- request
POST /xor/predict
{"x": [[0, 1]
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error": ".*JSON.*"\}$



=== TEST 5: wrong input width names the expected and the received shape
--- request
POST /xor/predict
{"x": [[0, 1, 2]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: \[1, 3\].*\[N, 2\]|\[N, 2\].*\[1, 3\]
--- error_log
learn: 400



=== TEST 6: wrong target shape in train names both shapes
--- request
POST /xor/train
{"x": [[0, 1], [1, 1]], "y": [[1], [0], [1]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: \[3, 1\]



=== TEST 7: train without y
--- request
POST /xor/train
{"x": [[0, 1]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body
{"error": "missing \"y\""}



=== TEST 8: a bin declaring 4 GB in a 5-byte body is 400, not an allocation
--- request eval
"POST /xor/predict\n" . "\xc6\xff\xff\xff\xff"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error": "body is not valid MessagePack"}



=== TEST 9: an array declaring 2^32-1 elements in 5 bytes is 400
--- request eval
"POST /xor/predict\n" . "\xdd\xff\xff\xff\xff"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error": "body is not valid MessagePack"}



=== TEST 10: 40 levels of nesting is 400
--- request eval
"POST /xor/predict\n" . ("\x91" x 40) . "\x00"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error": "MessagePack nesting is deeper than 32 levels"}



=== TEST 11: trailing bytes after the body are 400
--- request eval
"POST /xor/predict\n" . LearnBody::mp({x => [[0, 1]]}) . "\x00"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body_like: trailing



=== TEST 12: data shorter than the shape needs is 400
--- request eval
"POST /xor/predict\n" . LearnBody::fixture("xor_predict_short_data.mp")
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body_like: data



=== TEST 13: more elements than learn_max_elements is 400 naming the limit
--- config
    learn_max_elements 8;
    location = /xor/predict { learn_predict xor; }
--- request
POST /xor/predict
{"x": [[0, 1], [1, 0], [1, 1], [0, 0], [1, 1]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: 10.*8|8.*10



=== TEST 14: a body far above what learn_max_elements allows is 413 in JSON
--- config
    learn_max_elements 2;
    location = /xor/predict { learn_predict xor; }
--- request eval
"POST /xor/predict\n" . ("[" x 1) . CORE::join(",", (0) x 40000) . "]"
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error": "body of \d+ bytes is too large



=== TEST 15: a class index out of range is 400
--- request
POST /digits/train
{"x": [[0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0]], "y": [10]}
--- more_headers
Content-Type: application/json
--- error_code: 400



=== TEST 16: rejected trains change nothing: the step stays 0
--- request eval
[ "POST /xor/train\n{\"x\": [[0, 1, 1]], \"y\": [[1]]}",
  "POST /xor/train\n{\"x\": [[0, 1]]}",
  "POST /xor/train\n\xc1",
  "GET /status" ]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
[ qr/error/, qr/error/, qr/error/, qr/"xor": \{"step": 0, "loss": null/ ]



=== TEST 17: an empty body is 400
--- request
POST /xor/predict
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body_like: ^\{"error": "[^"]+"\}$



=== TEST 18: NaN or Inf in x or y is 400 naming the element; the model is untouched
--- request eval
my $inf = 9**9**9;
my $nan = $inf - $inf;
[ "POST /xor/train\n{\"x\": [[0, 1], [1, 1e999]], \"y\": [[1], [0]]}",
  "POST /xor/train\n" . LearnBody::mp({x => [[0, 1]], y => [[$nan]]}),
  "POST /xor/train\n" . LearnBody::mp({x => {shape => [1, 2],
                                            dtype => "float32",
                                            data => pack("f<2", 0, $inf)},
                                       y => [[1]]}),
  "POST /xor/train\n" . LearnBody::mp({x => {shape => [1, 2],
                                            dtype => "float64",
                                            data => pack("d<2", -$inf, 0)},
                                       y => [[1]]}),
  "POST /xor/predict\n" . LearnBody::mp({x => [[0, $nan]]}),
  "POST /xor/predict\n{\"x\": [[0, 1], [1, 0]]}",
  "GET /status" ]
--- more_headers eval
[ "Content-Type: application/json",
  "Content-Type: application/msgpack\nAccept: application/json",
  "Content-Type: application/msgpack",
  "Content-Type: application/msgpack",
  "Content-Type: application/msgpack",
  "Content-Type: application/json",
  "" ]
--- error_code eval
[400, 400, 400, 400, 400, 200, 200]
--- response_body_like eval
[ qr/^\{"error": "x has a non-finite value \(NaN or Inf\) at element 3"\}$/,
  qr/^\{"error": "y has a non-finite value \(NaN or Inf\) at element 0"\}$/,
  qr/^\{"error": "x has a non-finite value \(NaN or Inf\) at element 1"\}$/,
  qr/^\{"error": "x has a non-finite value \(NaN or Inf\) at element 0"\}$/,
  qr/^\{"error": "x has a non-finite value \(NaN or Inf\) at element 1"\}$/,
  qr/^\{"y": ?\[\[-?\d[^\],]*\], ?\[-?\d[^\],]*\]\]\}$/,
  qr/"xor": \{"step": 0, "loss": null/ ]



=== TEST 19: a rejected request writes exactly one line to error.log, at info
--- log_level: info
--- request eval
"POST /xor/train\n" . LearnBody::mp({x => [[0, 9**9**9]], y => [[1]]})
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body
{"error": "x has a non-finite value (NaN or Inf) at element 1"}
--- grep_error_log eval: qr/\[\w+\](?= \d+#\d+: \*\d+ )/
--- grep_error_log_out
[info]
--- error_log
learn: 400: x has a non-finite value (NaN or Inf) at element 1
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 20: a malformed body, too: one info line
--- log_level: info
--- request eval
"POST /xor/predict\n\xc1"
--- more_headers
Content-Type: application/msgpack
--- error_code: 400
--- response_body
{"error": "body is not valid MessagePack"}
--- grep_error_log eval: qr/\[\w+\](?= \d+#\d+: \*\d+ )/
--- grep_error_log_out
[info]
--- error_log
learn: 400: body is not valid MessagePack
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 21: a JSON key holding \u0000 is refused, not read as "x"
--- request
POST /xor/predict
{"x\u0000y": [[0, 1]]}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body
{"error": "JSON strings must not contain \\u0000"}



=== TEST 22: JSON numbers with leading zeros, and a byte order mark, are 400
--- request eval
[ "POST /xor/predict\n{\"x\": [[01, 1]]}",
  "POST /xor/predict\n\xef\xbb\xbf{\"x\": [[0, 1]]}",
  "POST /xor/predict\n{\"x\": [[0, 1.]]}" ]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[ qr/^\{"error": "body is not valid JSON: a malformed number/,
  qr/^\{"error": "body is not valid JSON: it starts with a byte order mark"\}$/,
  qr/^\{"error": "body is not valid JSON: a malformed number/ ]



=== TEST 23: a JSON tensor over learn_max_elements is 400 before anything is allocated
--- config
    learn_max_elements 8;
    location = /xor/predict { learn_predict xor; }
--- request eval
"POST /xor/predict\n{\"x\": [" . CORE::join(",", (0) x 30000) . "]}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body
{"error": "tensor has 30000 elements, learn_max_elements is 8"}
