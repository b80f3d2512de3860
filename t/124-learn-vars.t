# $learn_model, $learn_version, $learn_step, $learn_loss and
# $learn_compute_us: what an access log or a header records of every
# predict, train and feedback.

use lib 't/lib';
use TestLearn;
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a train's log line: the model, the step it applied, its loss
--- http_config
    learn_model xor models/xor.lua seed=1;
    log_format learn "learned $learn_model $learn_version step=$learn_step loss=$learn_loss us=$learn_compute_us";
--- config
    location = /train {
        learn_train xor;
        access_log logs/error.log learn;
    }
--- more_headers
Content-Type: application/json
--- request
POST /train
{"x": [[0, 1]], "y": [[1]]}
--- response_body_like: ^\{"loss":([0-9.e+-]+),"step":1\}$
--- error_log eval
qr/learned xor live step=1 loss=[0-9.e+-]+ us=\d+$/



=== TEST 2: the loss in the log is the loss in the answer
--- http_config
    learn_model xor models/xor.lua seed=1;
    log_format learn "learned loss=$learn_loss";
--- config
    location = /train {
        learn_train xor;
        add_header X-Loss $learn_loss;
        access_log logs/error.log learn;
    }
--- more_headers
Content-Type: application/json
--- request
POST /train
{"x": [[0, 1], [1, 1]], "y": [[1], [0]]}
--- response_headers_like
X-Loss: [0-9.e+-]+
--- response_body_like: ^\{"loss":([0-9.e+-]+),"step":1\}$
--- error_log eval
qr/learned loss=[0-9.e+-]+$/



=== TEST 3: predicts log the step of the parameters that answered, no loss
--- http_config
    learn_model xor models/xor.lua seed=1;
    log_format learn "predicted $learn_model $learn_version step=$learn_step loss=$learn_loss";
--- config
    location = /train { learn_train xor; }
    location = /predict {
        learn_predict xor;
        add_header X-Learn "$learn_model $learn_version $learn_step";
        access_log logs/error.log learn;
    }
--- more_headers
Content-Type: application/json
--- request eval
[ "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /train\n{\"x\": [[0, 1]], \"y\": [[1]]}",
  "POST /predict\n{\"x\": [[0, 1]]}" ]
--- response_headers eval
[ "", "", "X-Learn: xor live 2" ]



=== TEST 3b: a predict's log line has no loss
--- http_config
    learn_model xor models/xor.lua seed=1;
    log_format learn "predicted $learn_model $learn_version step=$learn_step loss=$learn_loss";
--- config
    location = /predict {
        learn_predict xor;
        access_log logs/error.log learn;
    }
--- more_headers
Content-Type: application/json
--- request
POST /predict
{"x": [[0, 1]]}
--- error_log eval
qr/predicted xor live step=0 loss=-$/



=== TEST 4: a refused request has a model but no step
--- http_config
    learn_model xor models/xor.lua seed=1;
    log_format learn "refused $status $learn_model [$learn_step] [$learn_compute_us]";
--- config
    location = /predict {
        learn_predict xor;
        access_log logs/error.log learn;
    }
--- more_headers
Content-Type: application/json
--- request
POST /predict
{"x": [[0, 1, 2]]}
--- error_code: 400
--- error_log
refused 400 xor [-] [-]



=== TEST 5: outside learn locations they are empty
--- http_config
    learn_model xor models/xor.lua seed=1;
--- config
    location = /t { return 200 "[$learn_model][$learn_step][$learn_loss]\n"; }
--- request
GET /t
--- response_body
[][][]
