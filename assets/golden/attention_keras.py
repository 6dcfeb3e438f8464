"""Golden values for rensa-nn's attention from Keras, where the two define the same score.

- Keras `Attention(score_mode="dot", use_scale=False)` is Luong's dot score, `q . k`;
- Keras `AdditiveAttention(use_scale=False)` is `sum(tanh(q + k))`: Bahdanau's additive score
  `v . tanh(W_q q + b + W_k k)` with `W_q = W_k = I`, `b = 0` and `v = 1` (Keras's layer has no
  learned projections).

Keys are masked by length (Keras's `value_mask`); masked keys get weight 0 in both.

Run:  .venv-peers/bin/python assets/golden/attention_keras.py > assets/golden/attention_keras.json
(`.venv-peers` is the environment `cargo xtask bench ... --peers` creates: tensorflow-cpu, numpy.)
The Rust test `crates/rensa-nn/tests/suite/attention.rs` reads the JSON.
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def case(name, layer, score, rng, batch, tq, tk, d, dv, lengths):
    query = rng.standard_normal((batch, tq, d)).astype(np.float32)
    keys = rng.standard_normal((batch, tk, d)).astype(np.float32)
    values = rng.standard_normal((batch, tk, dv)).astype(np.float32)
    mask = None
    if lengths is not None:
        mask = np.arange(tk)[None, :] < np.array(lengths)[:, None]
    context, weights = layer(
        [query, values, keys],
        mask=[None, mask] if mask is not None else None,
        return_attention_scores=True,
    )
    return {
        "name": name,
        "score": score,
        "batch": batch,
        "queries": tq,
        "keys": tk,
        "size": d,
        "value_size": dv,
        "lengths": lengths,
        "query": query.ravel().tolist(),
        "key": keys.ravel().tolist(),
        "value": values.ravel().tolist(),
        "context": np.asarray(context).ravel().tolist(),
        "weights": np.asarray(weights).ravel().tolist(),
    }


def main():
    rng = np.random.default_rng(20261204)
    dot = keras.layers.Attention(score_mode="dot", use_scale=False)
    additive = keras.layers.AdditiveAttention(use_scale=False)
    cases = [
        case("dot", dot, "dot", rng, 2, 3, 5, 4, 3, None),
        case("dot masked", dot, "dot", rng, 3, 2, 6, 4, 2, [6, 3, 1]),
        case("additive", additive, "additive", rng, 2, 3, 5, 4, 3, None),
        case("additive masked", additive, "additive", rng, 3, 4, 6, 5, 2, [2, 6, 4]),
    ]
    print(json.dumps({"keras": keras.__version__, "tensorflow": tf.__version__, "cases": cases}))


if __name__ == "__main__":
    main()
