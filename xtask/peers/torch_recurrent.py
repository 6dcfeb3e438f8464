"""rensa's peer for `cargo xtask bench recurrent --backend wgpu --peers`: PyTorch's recurrent
layers (cuDNN's fused kernels on a CUDA GPU, in f32 with TF32 off, else PyTorch's CPU code),
forward + backward of sum(outputs) over all steps of a [B, T, I] batch, the same work as rensa's
bench; the input needs no gradient, the layer's weights do. Timed after warm-up with the device synchronised before the
clock stops; prints one tab-separated line per measurement:

    peer  version  cell  batch  time  input  hidden  median_ms  runs

where peer is torch-cudnn-<GPU name> or torch-cpu.

Usage: python3 torch_recurrent.py CELL:B,T,I,H:RUNS ...   (CELL is LSTM, GRU or SimpleRNN)
"""
import statistics
import sys
import time

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cuda":
    PEER = "torch-cudnn-" + torch.cuda.get_device_name(0).replace(" ", "_")
    torch.backends.cudnn.enabled = True
    # f32 arithmetic, as rensa's: cuDNN's RNNs may otherwise round to TF32 on tensor cores.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
else:
    PEER = "torch-cpu"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def layer(cell, i, h):
    if cell == "LSTM":
        return torch.nn.LSTM(i, h, batch_first=True)
    if cell == "GRU":
        return torch.nn.GRU(i, h, batch_first=True)
    if cell == "SimpleRNN":
        return torch.nn.RNN(i, h, nonlinearity="tanh", batch_first=True)
    raise SystemExit(f"unknown cell {cell!r}")


def measure(cell, b, t, i, h, runs):
    torch.manual_seed(0)
    x = torch.randn(b, t, i, device=DEVICE)
    net = layer(cell, i, h).to(DEVICE)

    def step():
        net.zero_grad(set_to_none=True)
        net(x)[0].sum().backward()
        sync()

    for _ in range(3):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


for spec in sys.argv[1:]:
    cell, dims, runs = spec.split(":")
    b, t, i, h = (int(v) for v in dims.split(","))
    ms = measure(cell, b, t, i, h, int(runs))
    print(f"{PEER}\t{torch.__version__}\t{cell}\t{b}\t{t}\t{i}\t{h}\t{ms:.3f}\t{runs}", flush=True)
