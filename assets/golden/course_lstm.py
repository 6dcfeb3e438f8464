"""Golden gradients from the course's numpy LSTM layer (forward caching the gates, hand-written
backward), unrolled over a short sequence, in float64.

Run:  python3 assets/golden/course_lstm.py > assets/golden/course_lstm.json
Needs numpy only. The Rust test `crates/rensa-nn/tests/f64/course_lstm.rs` reads the JSON and
checks that rensa's LSTM (its fused autodiff node and the plain path) gives the same outputs and
the same gradients.

The class below is the course's `LSTM` as written: weights `Wx [I, 4H]`, `Wh [H, 4H]`, `b [4H]`
with the gates in the order (f, g, i, o). rensa's order is (i, f, g, o); the test permutes the
columns. A sequence runs one layer object per step sharing the weights; backward walks the
steps from the last, adding each step's output gradient to the state gradient coming from the
step after it, and sums the weight gradients over the steps.
"""
import json
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class LSTM:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        N, H = h_prev.shape
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        f = A[:, :H]
        g = A[:, H:2 * H]
        i = A[:, 2 * H:3 * H]
        o = A[:, 3 * H:]
        f = sigmoid(f)
        g = np.tanh(g)
        i = sigmoid(i)
        o = sigmoid(o)
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c_next = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c_next ** 2)
        dc_prev = ds * f
        di = ds * g
        df = ds * c_prev
        do = dh_next * tanh_c_next
        dg = ds * i
        di *= i * (1 - i)
        df *= f * (1 - f)
        do *= o * (1 - o)
        dg *= (1 - g ** 2)
        dA = np.hstack((df, dg, di, do))
        dWh = np.dot(h_prev.T, dA)
        dWx = np.dot(x.T, dA)
        db = dA.sum(axis=0)
        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db
        dx = np.dot(dA, Wx.T)
        dh_prev = np.dot(dA, Wh.T)
        return dx, dh_prev, dc_prev


def main():
    rng = np.random.default_rng(20261128)
    N, T, I, H = 3, 5, 4, 6
    Wx = rng.normal(0.0, 0.5, (I, 4 * H))
    Wh = rng.normal(0.0, 0.5, (H, 4 * H))
    b = rng.normal(0.0, 0.5, 4 * H)
    x = rng.normal(0.0, 1.0, (N, T, I))
    h0 = rng.normal(0.0, 0.5, (N, H))
    c0 = rng.normal(0.0, 0.5, (N, H))
    # Upstream gradients: of every output h_t, and of the final h and c.
    d_out = rng.normal(0.0, 1.0, (N, T, H))
    d_h_last = rng.normal(0.0, 1.0, (N, H))
    d_c_last = rng.normal(0.0, 1.0, (N, H))

    layers, outputs = [], []
    h, c = h0, c0
    for t in range(T):
        layer = LSTM(Wx, Wh, b)
        h, c = layer.forward(x[:, t, :], h, c)
        layers.append(layer)
        outputs.append(h)
    h_last, c_last = h, c

    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dx = np.zeros_like(x)
    dh, dc = d_h_last, d_c_last
    for t in reversed(range(T)):
        dx[:, t, :], dh, dc = layers[t].backward(d_out[:, t, :] + dh, dc)
        dWx += layers[t].grads[0]
        dWh += layers[t].grads[1]
        db += layers[t].grads[2]

    values = {
        "gate_order": "f, g, i, o",
        "Wx": Wx, "Wh": Wh, "b": b, "x": x, "h0": h0, "c0": c0,
        "d_out": d_out, "d_h_last": d_h_last, "d_c_last": d_c_last,
        "out": np.stack(outputs, axis=1), "h_last": h_last, "c_last": c_last,
        "dWx": dWx, "dWh": dWh, "db": db, "dx": dx, "dh0": dh, "dc0": dc,
    }
    doc = {
        k: (v if isinstance(v, str) else {"shape": list(np.shape(v)), "data": np.ravel(v).tolist()})
        for k, v in values.items()
    }
    print(json.dumps(doc, indent=None))


if __name__ == "__main__":
    main()
