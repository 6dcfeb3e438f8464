"""rensa's peer for `cargo xtask bench recurrent --peers`: Keras/TensorFlow recurrent layers on
the CPU, forward + backward of sum(outputs) with return_sequences=True, compiled with
tf.function, timed after warm-up; prints one tab-separated line per measurement:

    peer  version  cell  batch  time  input  hidden  median_ms  runs

Usage: python keras_recurrent.py CELL:B,T,I,H:RUNS ...   (CELL is LSTM, GRU or SimpleRNN)
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def measure(cell, b, t, i, h, runs):
    x = tf.constant(np.random.default_rng(0).standard_normal((b, t, i)).astype("float32"))
    layer = getattr(tf.keras.layers, cell)(h, return_sequences=True)
    layer(x)  # build

    @tf.function
    def fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, layer.trainable_variables)

    for _ in range(3):
        [g.numpy() for g in fwd_bwd()]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        [g.numpy() for g in fwd_bwd()]
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


for spec in sys.argv[1:]:
    cell, dims, runs = spec.split(":")
    b, t, i, h = (int(v) for v in dims.split(","))
    ms = measure(cell, b, t, i, h, int(runs))
    print(f"keras-tf-cpu\t{tf.__version__}\t{cell}\t{b}\t{t}\t{i}\t{h}\t{ms:.3f}\t{runs}", flush=True)
