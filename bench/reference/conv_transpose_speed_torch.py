"""PyTorch's time for the shapes of `cargo bench --bench conv -- conv_transpose2d avg_pool2d`.

float32 on 2 threads (as pente's runs), the median of 50 timed runs after 10 warm-up runs;
fwd_bwd is the forward, a sum, and the backward to the input and weight, as benches/common's
forward_backward.

    /work/venv-peers/bin/python bench/reference/conv_transpose_speed_torch.py
"""

import statistics
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def median_ms(f, reps=50, warm=10):
    for _ in range(warm):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def fwd_bwd(op, *inputs):
    def run():
        vs = [x.clone().requires_grad_(True) for x in inputs]
        op(*vs).sum().backward()
    return run


x, w = torch.randn(32, 64, 7, 7), torch.randn(64, 32, 3, 3)
up = lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
with torch.no_grad():
    print(f"conv_transpose2d/up/fwd      {median_ms(lambda: up(x, w)):.3f} ms")
print(f"conv_transpose2d/up/fwd_bwd  {median_ms(fwd_bwd(up, x, w)):.3f} ms")
a = torch.randn(32, 64, 24, 24)
avg = lambda a: F.avg_pool2d(a, 3, 2, 1)
with torch.no_grad():
    print(f"avg_pool2d/avg/fwd           {median_ms(lambda: avg(a)):.3f} ms")
print(f"avg_pool2d/avg/fwd_bwd       {median_ms(fwd_bwd(avg, a)):.3f} ms")
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
