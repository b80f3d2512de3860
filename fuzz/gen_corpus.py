#!/usr/bin/python3
"""Writes the seed corpus of fuzz_codec into fuzz/corpus/ (small files).

    /usr/bin/python3 fuzz/gen_corpus.py

Bodies are made with the real client libraries (msgpack, msgpack_numpy),
in every form the codec accepts, plus a few hostile ones.
"""

import json
import os

import msgpack
import msgpack_numpy as m
import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([[0], [1], [1], [0]], dtype=np.float32)

seeds = {
    "numpy_bare": m.packb(x),
    "numpy_train": m.packb({"x": x, "y": y}),
    "numpy_f8_i8": m.packb({"x": x.astype(np.float64),
                            "y": np.array([0, 1, 1, 0], dtype=np.int64)}),
    "numpy_i4_4d": m.packb(np.arange(8, dtype=np.int32).reshape(1, 2, 2, 2)),
    "numpy_str_keys": m.packb({"x": x}, use_bin_type=False),
    "numpy_kind": m.packb({"kind": "predict", "x": x[:1]}),
    "numpy_empty": m.packb(np.zeros((0, 2), dtype=np.float32)),
    "raw": msgpack.packb({"x": {"shape": [4, 2], "dtype": "float32",
                                "data": x.tobytes()}}),
    "raw_array_data": msgpack.packb({"shape": [2, 2], "data": [1, 2, 3, 4]}),
    "nested": msgpack.packb({"x": x.tolist(), "y": [[0], [1], [1], [0]]}),
    "nested_bare": msgpack.packb([[1.5, -2], [3, 4]]),
    "nested_3d": msgpack.packb([[[1, 2]], [[3, 4]]]),
    "weights": m.packb({"0.weight": np.ones((2, 2), dtype=np.float32),
                        "0.bias": np.zeros(2, dtype=np.float32)}),
    "json_train": json.dumps({"x": x.tolist(), "y": [0, 1, 1, 0]}).encode(),
    "feedback": msgpack.packb({"id": "0123456789abcdef" * 2, "y": 1}),
    "feedback_ids": msgpack.packb({"ids": ["a1", "b2"],
                                   "y": y[:2].tolist()}),
    "json_feedback": json.dumps({"id": "f00d", "y": [0.5]}).encode(),
    "json_feedback_ids": json.dumps({"ids": ["a", "b", "c"],
                                     "y": [[1], [0], [1]]}).encode(),
    "json_shape": json.dumps({"x": {"shape": [2, 2],
                                    "data": [0.5, 1, -2, 3e-3]}}).encode(),
    "json_bare": b"[[1, 2], [3, 4]]\n",
    "json_bare_obj": b'{"shape": [2], "data": [1, 2], "dtype": "float64"}',
    "json_dtype": json.dumps({"x": [[1, 2]], "y": {
        "shape": [1], "data": [1], "dtype": "int64"}}).encode(),
    "json_weights": json.dumps({"0.weight": [[1, 2]], "0.bias": {
        "shape": [1], "data": [0.25]}}).encode(),
    "bomb_array32": b"\xdd\x01\x00\x00\x00",
    "bomb_bin32": b"\x81\xa1x\xc6\xff\xff\xff\xff",
    "deep": b"\x91" * 40 + b"\x00",
    "ragged": msgpack.packb({"x": [[1, 2], [3]]}),
}

for name, body in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(body)
