"""Golden values for rensa-nn's recurrent layers, from a plain numpy implementation of the
same equations (float64).

Run:  python3 assets/golden/recurrent.py > assets/golden/recurrent.json
Needs numpy only. The Rust suite `crates/rensa-nn/tests/suite/recurrent.rs` reads the JSON.

Layouts match rensa: batch-first x [B, T, I]; weights [in, out] with gates side by side,
LSTM gate order (i, f, g, o) and GRU (r, z, n); lengths right-pad; on padded steps the state is
carried over and the output is zero; the backward direction runs from the last step.
"""
import json
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_step(x, h, p, act):
    a = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    return {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "sigmoid": sigmoid}[act](a), None


def lstm_step(x, h, c, p):
    H = h.shape[1]
    a = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c = f * c + i * g
    return o * np.tanh(c), c


def gru_step(x, h, p, reset_after):
    H = h.shape[1]
    xw = x @ p["w_ih"] + p["b_ih"]
    w_hh, b_hh = p["w_hh"], p["b_hh"]
    r = sigmoid(xw[:, :H] + h @ w_hh[:, :H] + b_hh[:H])
    z = sigmoid(xw[:, H:2 * H] + h @ w_hh[:, H:2 * H] + b_hh[H:2 * H])
    if reset_after:
        n = np.tanh(xw[:, 2 * H:] + r * (h @ w_hh[:, 2 * H:] + b_hh[2 * H:]))
    else:
        n = np.tanh(xw[:, 2 * H:] + (r * h) @ w_hh[:, 2 * H:] + b_hh[2 * H:])
    return (1.0 - z) * n + z * h, None


def run(case, x, p, lengths, reverse):
    B, T, _ = x.shape
    H = p["w_hh"].shape[0]
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    out = np.zeros((B, T, H))
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        if case["cell"] == "lstm":
            h_new, c_new = lstm_step(x[:, t], h, c, p)
        elif case["cell"] == "gru":
            h_new, c_new = gru_step(x[:, t], h, p, case["reset_after"])
        else:
            h_new, c_new = rnn_step(x[:, t], h, p, case["activation"])
        m = (t < lengths)[:, None].astype(float)
        out[:, t] = m * h_new
        h = m * h_new + (1 - m) * h
        if c_new is not None:
            c = m * c_new + (1 - m) * c
    return out, h, (c if case["cell"] == "lstm" else None)


def make_case(rng, name, cell, B, T, I, H, bidirectional=False, lengths=None, **extra):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    case = {"name": name, "cell": cell, "batch": B, "time": T, "input": I, "hidden": H,
            "bidirectional": bidirectional, "reset_after": extra.get("reset_after", True),
            "activation": extra.get("activation", "tanh")}
    x = rng.normal(size=(B, T, I))
    lengths_arr = np.array(lengths if lengths is not None else [T] * B)
    case["x"] = x.ravel().tolist()
    case["lengths"] = lengths
    dirs = []
    outs, hs, cs = [], [], []
    for d in range(2 if bidirectional else 1):
        p = {"w_ih": rng.normal(scale=0.5, size=(I, G * H)), "w_hh": rng.normal(scale=0.5, size=(H, G * H)),
             "b_ih": rng.normal(scale=0.1, size=G * H), "b_hh": rng.normal(scale=0.1, size=G * H)}
        o, h, c = run(case, x, p, lengths_arr, reverse=(d == 1))
        outs.append(o); hs.append(h); cs.append(c)
        dirs.append({k: v.ravel().tolist() for k, v in p.items()})
    case["directions"] = dirs
    case["output"] = np.concatenate(outs, axis=2).ravel().tolist()
    case["h_n"] = np.stack(hs).ravel().tolist()
    case["c_n"] = np.stack(cs).ravel().tolist() if cell == "lstm" else None
    return case


rng = np.random.default_rng(20261128)
cases = [
    make_case(rng, "rnn_tanh", "rnn", 3, 5, 4, 6),
    make_case(rng, "rnn_relu", "rnn", 2, 4, 3, 5, activation="relu"),
    make_case(rng, "rnn_sigmoid", "rnn", 2, 4, 3, 5, activation="sigmoid"),
    make_case(rng, "lstm", "lstm", 3, 5, 4, 6),
    make_case(rng, "gru_reset_after", "gru", 3, 5, 4, 6, reset_after=True),
    make_case(rng, "gru_reset_before", "gru", 3, 5, 4, 6, reset_after=False),
    make_case(rng, "bilstm_masked", "lstm", 3, 6, 4, 5, bidirectional=True, lengths=[6, 4, 1]),
    make_case(rng, "bigru_masked", "gru", 2, 5, 3, 4, bidirectional=True, lengths=[2, 5]),
    make_case(rng, "rnn_masked", "rnn", 3, 4, 2, 3, lengths=[1, 4, 3]),
]
print(json.dumps({"generator": "assets/golden/recurrent.py", "numpy": np.__version__, "cases": cases}))
