"""gemm with NumPy: C = A·B, f32, square and C-contiguous, n = 128, 256, 512, 1024, through
`np.matmul(a, b, out=c)` (its BLAS, usually OpenBLAS), limited to every core by threadpoolctl.

Figure and protocol as in gemm_torch.py. Where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE are set in
the environment, OpenBLAS may pick a slower kernel than the processor allows: run this script
with both unset (`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python gemm_numpy.py`, as
scripts/compare-peers does); the kernel it ran is printed under "blas".

Usage: python gemm_numpy.py [trials=10]
"""
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from harness import GEMM_SIZES, best_gflops, cores, emit, int_args


def main():
    (trials,) = int_args(10)
    blas = next((d for d in threadpool_info() if d.get("user_api") == "blas"), {})
    with threadpool_limits(limits=cores(), user_api="blas"):
        for n in GEMM_SIZES:
            rng = np.random.default_rng(n)
            a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
            c = np.empty((n, n), dtype=np.float32)
            gflops, seconds = best_gflops(lambda: np.matmul(a, b, out=c), n, trials)
            error = float(np.abs(c - a.astype(np.float64) @ b.astype(np.float64)).max())
            emit("gemm", "numpy", f"n={n}", "gflops", gflops, trials, seconds, error, np.__version__, cores(),
                 blas=f"{blas.get('internal_api')}-{blas.get('version')}/{blas.get('architecture')}")


if __name__ == "__main__":
    main()
