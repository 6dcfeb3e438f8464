"""The MLP VAE of pytorch/examples in Keras/TensorFlow (CPU), for the speed comparison with rensa.

784 -> 400 (ReLU) -> (mu, log var) of 20; 20 -> 400 (ReLU) -> 784 logits; Bernoulli pixels;
-ELBO = summed binary cross-entropy + KL(q || N(0, I)) with one reparameterised sample, averaged
over the batch; Adam lr 1e-3; batches of 128, shuffled; the training step compiled by
`tf.function` (Keras's `fit` with a custom `train_step`, as the Keras VAE example does).

Usage: keras_vae.py DATA_DIR EPOCHS SEED
Prints one JSON line: seconds per epoch (median of the epochs after the first, which traces and
compiles), the last epoch's -ELBO and the test -ELBO.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from numpy_vae import images  # noqa: E402


class Vae(keras.Model):
    def __init__(self, pixels=784, hidden=400, latent=20):
        super().__init__()
        self.latent = latent
        self.encode = keras.layers.Dense(hidden, activation="relu")
        self.mean = keras.layers.Dense(latent)
        self.log_var = keras.layers.Dense(latent)
        self.decode_hidden = keras.layers.Dense(hidden, activation="relu")
        self.decode = keras.layers.Dense(pixels)

    def neg_elbo(self, x):
        h = self.encode(x)
        mu, log_var = self.mean(h), self.log_var(h)
        z = mu + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mu))
        logits = self.decode(self.decode_hidden(z))
        recon = tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=1
        )
        kl = 0.5 * tf.reduce_sum(tf.square(mu) + tf.exp(log_var) - 1.0 - log_var, axis=1)
        return tf.reduce_mean(recon + kl)

    def call(self, x):
        return self.neg_elbo(x)

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            loss = self.neg_elbo(x)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"neg_elbo": loss}


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def main():
    directory, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keras.utils.set_random_seed(seed)
    train = images(directory, "train-images-idx3-ubyte")
    test = images(directory, "t10k-images-idx3-ubyte")
    model = Vae(pixels=train.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    times = EpochTimes()
    history = model.fit(train, batch_size=128, epochs=epochs, shuffle=True, verbose=0,
                        callbacks=[times])
    test_loss = float(np.mean([model(test[b:b + 1000]).numpy() for b in range(0, len(test), 1000)]))
    timed = times.seconds[1:] or times.seconds
    print(json.dumps({
        "peer": f"keras {keras.__version__} / tensorflow-cpu {tf.__version__}",
        "seconds_per_epoch": float(np.median(timed)),
        "epoch_seconds": times.seconds,
        "train_neg_elbo": float(history.history["neg_elbo"][-1]),
        "test_neg_elbo": test_loss,
    }))


if __name__ == "__main__":
    main()
