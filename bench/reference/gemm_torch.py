"""gemm with PyTorch: C = A·B, f32, square and contiguous, n = 128, 256, 512, 1024, through
`torch.mm(a, b, out=c)` (no autograd), on every core.

Figure: GFLOP/s (2n³ per product) of the best of `trials` timed trials, after a warm-up of at
least 0.2 s. A trial repeats the product until it has run for about 50 ms (one product for the
largest sizes) and counts the mean time per product. The check is the largest absolute
difference from the product computed in f64.

Usage: python gemm_torch.py [trials=10]
"""
import torch

from harness import GEMM_SIZES, best_gflops, cores, emit, int_args


def main():
    (trials,) = int_args(10)
    torch.set_num_threads(cores())
    for n in GEMM_SIZES:
        gen = torch.Generator().manual_seed(n)
        a = torch.rand((n, n), generator=gen) * 2 - 1
        b = torch.rand((n, n), generator=gen) * 2 - 1
        c = torch.empty((n, n))
        with torch.no_grad():
            gflops, seconds = best_gflops(lambda: torch.mm(a, b, out=c), n, trials)
        error = (c.double() - a.double() @ b.double()).abs().max().item()
        emit("gemm", "torch", f"n={n}", "gflops", gflops, trials, seconds, error, torch.__version__,
             torch.get_num_threads(), cpu_capability=torch.backends.cpu.get_cpu_capability())


if __name__ == "__main__":
    main()
