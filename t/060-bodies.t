# Bodies that nginx does not hand over in one memory buffer: buffered to a
# temp file, or sent chunked.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';
use LearnBody;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a 67 KB body nginx writes to a temp file trains
--- http_config
    learn_model digits models/digits.lua seed=1;
--- config
    client_body_buffer_size 1k;
    location = /train { learn_train digits; }
--- more_headers
Content-Type: application/msgpack
--- request eval
"POST /train\n" . LearnBody::fixture("digits_train_big_np.mp")
--- error_code: 200
--- response_body_like eval
qr/\xa4step\x01$/s
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 2: a chunked JSON body
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /predict { learn_predict xor; }
--- raw_request eval
"POST /predict HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
\r
7\r
{\"x\": [\r
c\r
[0, 1], [1, \r
4\r
0]]}\r
0\r
\r
"
--- error_code: 200
--- response_body_like: ^\{"y": ?\[\[[^\]]+\], ?\[[^\]]+\]\]\}$
