"""The MLP VAE of pytorch/examples written in numpy, as the reference for rensa's `vae` example.

784 -> 400 (ReLU) -> (mu, log var) of 20; 20 -> 400 (ReLU) -> 784 logits; Bernoulli pixels;
-ELBO = sum of the pixels' binary cross-entropy + KL(q || N(0, I)), one reparameterised sample per
image; Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) on the mean over the batch; PyTorch's default
initialisation (weights and biases uniform on +-1/sqrt(fan_in)); batches of 128 in a new order
every epoch; float32. The gradients are written out by hand.

Usage: numpy_vae.py DATA_DIR EPOCHS SEED [TRAIN]
       numpy_vae.py --check    (the hand-written gradients against central differences, in f64)
Prints one JSON line: the test -ELBO (one sample per image, as pytorch/examples reports it), its
reconstruction and KL parts, and the seconds per epoch.
"""

import gzip
import json
import os
import sys
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {name}[.gz] in {directory}")


def images(directory, name):
    x = read_idx(find(directory, name)).astype(np.float32) / 255.0
    return x.reshape(len(x), -1)


class Adam:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.params, self.lr, self.b1, self.b2, self.eps = params, lr, b1, b2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def linear_init(rng, fan_in, fan_out):
    bound = 1.0 / np.sqrt(fan_in)
    w = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
    b = rng.uniform(-bound, bound, size=fan_out).astype(np.float32)
    return w, b


def softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class Vae:
    def __init__(self, rng, pixels=784, hidden=400, latent=20):
        self.w1, self.b1 = linear_init(rng, pixels, hidden)
        self.wm, self.bm = linear_init(rng, hidden, latent)
        self.wv, self.bv = linear_init(rng, hidden, latent)
        self.w3, self.b3 = linear_init(rng, latent, hidden)
        self.w4, self.b4 = linear_init(rng, hidden, pixels)
        self.params = [self.w1, self.b1, self.wm, self.bm, self.wv, self.bv,
                       self.w3, self.b3, self.w4, self.b4]

    def forward(self, x, eps):
        """-ELBO terms per image and what the backward pass needs."""
        a1 = x @ self.w1 + self.b1
        h1 = np.maximum(a1, 0)
        mu = h1 @ self.wm + self.bm
        logvar = h1 @ self.wv + self.bv
        std = np.exp(0.5 * logvar)
        z = mu + std * eps
        a3 = z @ self.w3 + self.b3
        h3 = np.maximum(a3, 0)
        logits = h3 @ self.w4 + self.b4
        recon = (softplus(logits) - x * logits).sum(axis=1)
        kl = 0.5 * (mu * mu + np.exp(logvar) - 1.0 - logvar).sum(axis=1)
        return recon, kl, (x, a1, h1, mu, logvar, std, eps, z, a3, h3, logits)

    def backward(self, cache):
        """Gradients of the batch mean of -ELBO."""
        x, a1, h1, mu, logvar, std, eps, z, a3, h3, logits = cache
        n = len(x)
        d_logits = (sigmoid(logits) - x) / n
        g_w4, g_b4 = h3.T @ d_logits, d_logits.sum(0)
        d_h3 = d_logits @ self.w4.T
        d_a3 = d_h3 * (a3 > 0)
        g_w3, g_b3 = z.T @ d_a3, d_a3.sum(0)
        d_z = d_a3 @ self.w3.T
        # z = mu + exp(logvar / 2) eps; KL's derivatives: mu, (exp(logvar) - 1) / 2
        d_mu = d_z + mu / n
        d_logvar = d_z * eps * std * 0.5 + 0.5 * (np.exp(logvar) - 1.0) / n
        g_wm, g_bm = h1.T @ d_mu, d_mu.sum(0)
        g_wv, g_bv = h1.T @ d_logvar, d_logvar.sum(0)
        d_h1 = d_mu @ self.wm.T + d_logvar @ self.wv.T
        d_a1 = d_h1 * (a1 > 0)
        g_w1, g_b1 = x.T @ d_a1, d_a1.sum(0)
        return [g_w1, g_b1, g_wm, g_bm, g_wv, g_bv, g_w3, g_b3, g_w4, g_b4]


def check_gradients():
    rng = np.random.default_rng(0)
    model = Vae(rng, pixels=6, hidden=5)
    model.params = [p.astype(np.float64) for p in model.params]
    (model.w1, model.b1, model.wm, model.bm, model.wv, model.bv,
     model.w3, model.b3, model.w4, model.b4) = model.params
    x = rng.uniform(0, 1, (4, 6))
    eps = rng.standard_normal((4, 20))

    def loss():
        r, k, _ = model.forward(x, eps)
        return (r + k).mean()

    grads = model.backward(model.forward(x, eps)[2])
    worst = 0.0
    for p, g in zip(model.params, grads):
        for j in range(p.size):
            idx = np.unravel_index(j, p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss()
            p[idx] = old - 1e-6
            down = loss()
            p[idx] = old
            worst = max(worst, abs((up - down) / 2e-6 - g[idx]))
    assert worst < 1e-7, f"hand-written gradient off by {worst}"
    print(json.dumps({"max_abs_gradient_error": worst}))


def main():
    if sys.argv[1:] == ["--check"]:
        return check_gradients()
    directory, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    train = images(directory, "train-images-idx3-ubyte")
    if len(sys.argv) > 4:
        train = train[: int(sys.argv[4])]
    test = images(directory, "t10k-images-idx3-ubyte")
    rng = np.random.default_rng(seed)
    model = Vae(rng, pixels=train.shape[1])
    adam = Adam(model.params)
    batch = 128
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(train))
        for b in range(0, len(order), batch):
            x = train[order[b:b + batch]]
            eps = rng.standard_normal((len(x), 20)).astype(np.float32)
            _, _, cache = model.forward(x, eps)
            adam.step(model.backward(cache))
        epoch_seconds.append(time.perf_counter() - start)
    recon = kl = 0.0
    for b in range(0, len(test), 1000):
        x = test[b:b + 1000]
        eps = rng.standard_normal((len(x), 20)).astype(np.float32)
        r, k, _ = model.forward(x, eps)
        recon += float(r.sum())
        kl += float(k.sum())
    n = len(test)
    print(json.dumps({
        "peer": f"numpy {np.__version__}",
        "test_neg_elbo": (recon + kl) / n,
        "test_reconstruction": recon / n,
        "test_kl": kl / n,
        "seconds_per_epoch": float(np.median(epoch_seconds)),
    }))


if __name__ == "__main__":
    main()
