"""rensa's peer for `cargo xtask bench seq2seq --peers`: the course's Keras encoder-decoder
(SimpleRNN(10) encoder whose final state starts a SimpleRNN(10) decoder, teacher forcing,
Dense(1), Adam, MSE, batch 16, validation_split 0.2) on TensorFlow-CPU, then autoregressive
predictions from the windows starting at 0, 24, 49 and 74.

Usage: python keras_seq2seq.py EPOCHS SEED
Prints one JSON object: train_s (the wall time of `model.fit`, which traces and compiles its
functions in the first epoch), epoch_s (each epoch's wall time, training and validation), loss,
val_loss, autoregressive_mse (4 values).
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

epochs, seed = int(sys.argv[1]), int(sys.argv[2])
tf.keras.utils.set_random_seed(seed)
steps, hidden = 24, 10
x = np.linspace(-3 * np.pi, 3 * np.pi, 100)
sin, cos = np.sin(x), np.cos(x)
n = len(x) - steps
enc = np.stack([sin[i:i + steps] for i in range(n)])[..., None]
target = np.stack([cos[i:i + steps] for i in range(n)])[..., None]
dec = np.zeros_like(target)
dec[:, 1:] = target[:, :-1]

e_in = tf.keras.layers.Input(shape=(steps, 1))
_, e_state = tf.keras.layers.SimpleRNN(hidden, return_state=True)(e_in)
d_in = tf.keras.layers.Input(shape=(steps, 1))
d_rnn = tf.keras.layers.SimpleRNN(hidden, return_sequences=True, return_state=True)
d_out, _ = d_rnn(d_in, initial_state=[e_state])
dense = tf.keras.layers.Dense(1)
model = tf.keras.Model([e_in, d_in], dense(d_out))
model.compile(optimizer="adam", loss="mean_squared_error")
epoch_s = []


class EpochTimes(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        epoch_s.append(time.perf_counter() - self.start)


start = time.perf_counter()
hist = model.fit([enc, dec], target, epochs=epochs, batch_size=16, validation_split=0.2, verbose=0,
                 callbacks=[EpochTimes()])
train_s = time.perf_counter() - start

encoder = tf.keras.Model(e_in, e_state)
step_in = tf.keras.layers.Input(shape=(1, 1))
state_in = tf.keras.layers.Input(shape=(hidden,))
step_out, step_state = d_rnn(step_in, initial_state=[state_in])
decoder = tf.keras.Model([step_in, state_in], [dense(step_out), step_state])
errors = []
for i in [0, 24, 49, 74]:
    state = encoder(enc[i:i + 1])
    y = tf.zeros((1, 1, 1))
    out = []
    for _ in range(steps):
        y, state = decoder([y, state])
        out.append(float(y[0, 0, 0]))
    errors.append(float(np.mean((np.array(out) - cos[i:i + steps]) ** 2)))
print(json.dumps({"peer": "keras-tf-cpu " + tf.__version__, "train_s": train_s, "epoch_s": epoch_s,
                  "loss": hist.history["loss"][-1],
                  "val_loss": hist.history["val_loss"][-1], "autoregressive_mse": errors}))
