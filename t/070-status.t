# learn_status: JSON and Prometheus text.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: Prometheus text after one train and one predict
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /predict { learn_predict xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /predict\n{\"x\": [[0, 1]]}",
  "GET /status?format=prometheus" ]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
[ qr/"step": ?1/, qr/"y"/,
  qr/^# HELP learn_model_step [^\n]+\n# TYPE learn_model_step gauge\nlearn_model_step\{model="xor"\} 1\n# HELP learn_model_loss [^\n]+\n# TYPE learn_model_loss gauge\nlearn_model_loss\{model="xor"\} \d.*\nlearn_model_params\{model="xor"\} 81\n.*\nlearn_model_train_requests_total\{model="xor"\} 1\n.*\nlearn_model_predict_requests_total\{model="xor"\} 1\n.*\nlearn_model_predict_duration_seconds_count\{model="xor"\} 1\n.*\nlearn_model_train_duration_seconds_count\{model="xor"\} 1\n.*\nlearn_model_rejected_steps_total\{model="xor"\} 0\n.*learn_model_set_evaluations_total\{model="xor"\} 0\n.*learn_model_set_empty_total\{model="xor"\} 0\n.*# TYPE learn_model_lr gauge\nlearn_model_lr\{model="xor"\} 0\.01\n$/s ]



=== TEST 2: two models, both listed
--- http_config
    learn_model a models/xor.lua;
    learn_model b models/digits.lua;
--- config
    location = /status { learn_status; }
--- request
GET /status
--- response_body_like: ^\{"models": \{"a": \{"step": 0, .*"params": 81, .*\}, "b": \{"step": 0, .*"params": 4810, .*\}\}



=== TEST 3: POST to status is 405
--- config
    location = /status { learn_status; }
--- request
POST /status
x
--- error_code: 405
--- response_body_like: ^\{"error": "method POST is not allowed, use GET"\}



=== TEST 4: JSON: predict and train latency histograms count the answered requests
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /train { learn_train xor; }
    location = /predict { learn_predict xor; }
    location = /status { learn_status; }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /predict\n{\"x\": [[0, 1]]}",
  "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /predict\n{\"x\": [[0, 1, 1]]}",
  "POST /predict\n{\"x\": [[1, 1]]}",
  "GET /status" ]
--- error_code eval
[200, 200, 400, 200, 200]
--- response_body_like eval
[ qr/"y"/, qr/"step": ?1/, qr/expected/, qr/"y"/,
  qr/"predict_latency": \{"buckets_us": \[25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000\], "counts": \[\d+(, \d+){14}\], "sum_us": \d+, "count": 2\}, "train_latency": \{"buckets_us": \[25, [\d, ]+\], "counts": \[[\d, ]+\], "sum_us": \d+, "count": 1\}/ ]
