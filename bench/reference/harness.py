"""What every reference script shares: its command line, the timed loop, and its output line.

Each script prints one JSON object per measurement with the keys of `pente bench --json`
(workload, impl, size, figure, value, steps, seconds, check, threads), except that the
framework's version is under "version" where pente prints its own under "pente". `size` is
spelled exactly as pente spells it ("n=1024", "batch=64", "params=809856", "2-16-16-1"), so that
scripts/compare-peers can put the two side by side.
"""
import contextlib
import json
import os
import sys
import time

PRECISIONS = ("f32", "bf16")
"""The precision words a script takes (`bf16`: the training step's forward under
`torch.autocast("cpu", dtype=torch.bfloat16)`, as nanoGPT trains)."""
SIZES = ("10m",)
"""Size words: `10m` makes gpt_torch.py the gpt-10m workload."""


def int_args(*defaults):
    """The positional integer arguments after the script's own name, with defaults for the
    missing ones: `warmup, steps = int_args(20, 200)`."""
    given = [int(a) for a in sys.argv[1:] if a.lstrip("-").isdigit()]
    return tuple(given[i] if i < len(given) else d for i, d in enumerate(defaults))


def word_arg(choices, default):
    """The first non-numeric argument (a framework or a mode), checked against `choices`."""
    words = [a for a in sys.argv[1:] if not a.lstrip("-").isdigit() and a not in PRECISIONS + SIZES]
    word = words[0] if words else default
    if word not in choices:
        sys.exit(f"{sys.argv[0]}: expected one of {', '.join(choices)}, got {word!r}")
    return word


def precision_arg():
    """`bf16` when the arguments say so, else `f32`."""
    return "bf16" if "bf16" in sys.argv[1:] else "f32"


def autocast(precision):
    """PyTorch's CPU autocast to bf16 for `bf16`, nothing for `f32`."""
    if precision == "bf16":
        import torch
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def impl_name(name, precision):
    """`name`, with `-bf16` appended in bf16 (pente's names: `pente-bf16` beside `torch-bf16`)."""
    return name if precision == "f32" else f"{name}-{precision}"


def cores():
    """Threads to use: PEERS_THREADS if set, else every core, which is what pente's rayon pool
    uses by default."""
    return int(os.environ.get("PEERS_THREADS") or os.cpu_count() or 1)


def timed_steps(warmup, steps, step, sync=lambda last: last):
    """Runs `step(i)` for i in 0..warmup, then times steps warmup..warmup+steps. `sync(last)`
    waits for asynchronous work (JAX) and converts the last step's result to a float.
    Returns (seconds, last)."""
    for i in range(warmup):
        sync(step(i))
    start = time.perf_counter()
    last = None
    for i in range(steps):
        last = step(warmup + i)
    last = sync(last)
    return time.perf_counter() - start, last


GEMM_SIZES = (128, 256, 512, 1024)
"""The gemm workload's sizes, as `pente bench` runs them."""


def best_gflops(product, n, trials):
    """(GFLOP/s, seconds per product) of the best of `trials` trials of the n×n `product()`.

    After a warm-up of at least 0.2 s and 3 calls, each trial repeats the product for about
    50 ms (once, for products longer than that) and counts the mean time per product."""
    start, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < 0.2:
        product()
        calls += 1
    reps = max(1, round(0.05 / ((time.perf_counter() - start) / calls)))
    best = float("inf")
    for _ in range(trials):
        t = time.perf_counter()
        for _ in range(reps):
            product()
        best = min(best, (time.perf_counter() - t) / reps)
    return 2.0 * n ** 3 / best / 1e9, best


def emit(workload, impl, size, figure, value, steps, seconds, check, version, threads, **extra):
    """Prints one measurement as a JSON line (key order as in `pente bench --json`)."""
    line = {"workload": workload, "impl": impl, "size": size, "figure": figure, "value": round(value, 3),
            "steps": steps, "seconds": round(seconds, 6), "check": check, "version": version,
            "threads": threads}
    line.update(extra)
    print(json.dumps(line), flush=True)
