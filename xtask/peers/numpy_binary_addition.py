"""rensa's peer for `cargo xtask bench binary-addition --peers`: the course's numpy RNN that
learns 8-bit binary addition with hand-written backpropagation through time.

Written to run exactly the course's computation: 2 inputs, 16 sigmoid hidden units, one
sigmoid output, no biases, weights drawn with randn (weight_init_std = 1), SGD with lr 0.1,
one random pair (a, b < 128) per iteration, the loss (d - y)^2 / 2 per step, and the
course's output delta with d_sigmoid applied to the already-activated output y.

Usage: python numpy_binary_addition.py ITERS SEED
Prints one JSON object: train_s (the training loop only), exact_all_pairs (the share of the
16,384 pairs whose sum is exactly right afterwards).
"""
import json
import sys
import time

import numpy as np

iters, seed = int(sys.argv[1]), int(sys.argv[2])
np.random.seed(seed)

BITS, HIDDEN, LR = 8, 16, 0.1
# Row n: the bits of n, most significant first (the course's np.unpackbits table).
table = np.unpackbits(np.arange(2 ** BITS, dtype=np.uint8)[:, None], axis=1)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def d_sigmoid(v):
    s = sigmoid(v)
    return s * (1.0 - s)


w_in = np.random.randn(2, HIDDEN)
w_out = np.random.randn(HIDDEN, 1)
w = np.random.randn(HIDDEN, HIDDEN)

u = np.zeros((HIDDEN, BITS + 1))
z = np.zeros((HIDDEN, BITS + 1))
y = np.zeros((1, BITS))
delta_out = np.zeros((1, BITS))
delta = np.zeros((HIDDEN, BITS + 1))

start = time.perf_counter()
for _ in range(iters):
    a = np.random.randint(2 ** (BITS - 1))
    b = np.random.randint(2 ** (BITS - 1))
    a_bits, b_bits, d_bits = table[a], table[b], table[a + b]
    g_in = np.zeros_like(w_in)
    g_out = np.zeros_like(w_out)
    g = np.zeros_like(w)
    for t in range(BITS):  # least significant bit first
        x = np.array([a_bits[-t - 1], b_bits[-t - 1]]).reshape(1, -1)
        target = np.array([d_bits[BITS - t - 1]])
        u[:, t + 1] = np.dot(x, w_in) + np.dot(z[:, t].reshape(1, -1), w)
        z[:, t + 1] = sigmoid(u[:, t + 1])
        y[:, t] = sigmoid(np.dot(z[:, t + 1].reshape(1, -1), w_out))
        delta_out[:, t] = (y[:, t] - target) * d_sigmoid(y[:, t])
    for t in reversed(range(BITS)):
        x = np.array([a_bits[-t - 1], b_bits[-t - 1]]).reshape(1, -1)
        delta[:, t] = (np.dot(delta[:, t + 1].T, w.T) + np.dot(delta_out[:, t].T, w_out.T)) * d_sigmoid(u[:, t + 1])
        g_out += np.dot(z[:, t + 1].reshape(-1, 1), delta_out[:, t].reshape(-1, 1))
        g += np.dot(z[:, t].reshape(-1, 1), delta[:, t].reshape(1, -1))
        g_in += np.dot(x.T, delta[:, t].reshape(1, -1))
    w_in -= LR * g_in
    w_out -= LR * g_out
    w -= LR * g
train_s = time.perf_counter() - start

# Every pair at once (vectorised; not timed).
a = np.repeat(np.arange(128), 128)
b = np.tile(np.arange(128), 128)
h = np.zeros((a.size, HIDDEN))
total = np.zeros(a.size, dtype=np.int64)
for t in range(BITS):
    x = np.stack([(a >> t) & 1, (b >> t) & 1], axis=1).astype(float)
    h = sigmoid(x @ w_in + h @ w)
    total += (sigmoid(h @ w_out)[:, 0] >= 0.5).astype(np.int64) << t
print(json.dumps({"peer": "course numpy BPTT", "iters": iters, "seed": seed,
                  "train_s": round(train_s, 4), "exact_all_pairs": float(np.mean(total == a + b))}))
