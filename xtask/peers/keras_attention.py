"""rensa's peer for `cargo xtask bench attention --peers`: the speed of one training epoch of
a character encoder-decoder with attention in Keras/TensorFlow-CPU, the form of the TensorFlow
NMT tutorial: Embedding + GRU encoder (all states), Embedding + GRU decoder started from the
encoder's final state, teacher forcing, `AdditiveAttention` of every decoder state over the
encoder states (source padding masked), `Dense(vocab)` on `[decoder state; context]`, Adam,
sparse cross-entropy with the target padding masked.

Usage: python keras_attention.py DATA.json EPOCHS BATCH HIDDEN EMBEDDING SEED
DATA.json holds {"source_vocab", "target_vocab", "pairs": [[source ids], [target ids]]...}
(ids as rensa's vocabularies number them: PAD 0, BOS 1, EOS 2, UNK 3).
Prints one JSON object: train_s (all epochs), examples_per_s (the last epoch), loss.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

path, epochs, batch, hidden, embedding, seed = sys.argv[1], *map(int, sys.argv[2:7])
tf.keras.utils.set_random_seed(seed)
data = json.load(open(path))
pairs = data["pairs"]
s_len = max(len(s) for s, _ in pairs)
t_len = max(len(t) for _, t in pairs) + 1
n = len(pairs)
src = np.zeros((n, s_len), np.int32)
dec = np.zeros((n, t_len), np.int32)
tgt = np.zeros((n, t_len), np.int32)
for i, (s, t) in enumerate(pairs):
    src[i, :len(s)] = s
    dec[i, 0] = 1
    dec[i, 1:len(t) + 1] = t
    tgt[i, :len(t)] = t
    tgt[i, len(t)] = 2

L = tf.keras.layers
e_in = L.Input((s_len,), dtype="int32")
e_emb = L.Embedding(data["source_vocab"], embedding, mask_zero=True)(e_in)
e_out, e_state = L.GRU(hidden, return_sequences=True, return_state=True)(e_emb)
d_in = L.Input((t_len,), dtype="int32")
d_emb = L.Embedding(data["target_vocab"], embedding, mask_zero=True)(d_in)
d_out = L.GRU(hidden, return_sequences=True)(d_emb, initial_state=e_state)
context = L.AdditiveAttention()([d_out, e_out])
logits = L.Dense(data["target_vocab"])(L.Concatenate()([d_out, context]))
model = tf.keras.Model([e_in, d_in], logits)
loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
model.compile(optimizer=tf.keras.optimizers.Adam(0.002), loss=loss)

times = []


class Timer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.start)


hist = model.fit([src, dec], tgt, epochs=epochs, batch_size=batch, verbose=0, callbacks=[Timer()])
print(json.dumps({"peer": "keras-tf-cpu " + tf.__version__, "train_s": sum(times),
                  "examples_per_s": n / times[-1], "loss": hist.history["loss"][-1],
                  "source_steps": s_len, "target_steps": t_len}))
