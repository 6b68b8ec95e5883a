"""Writes nn/tests/fixtures/optim.json: torch.optim's RMSprop and Adagrad, the Lion update (not in
torch: the reference update of lucidrains' lion-pytorch, in plain torch ops), and the learning
rates of torch's OneCycleLR and LinearLR, all in f64.

The optimizers run 20 steps on a fixed quadratic with two parameters, a matrix `w` and a vector
`b`: loss = ½·Σ a·(p − c)², whose gradient a·(p − c) is set by hand so that the test exercises
the optimizer alone. nn/tests/optim_torch.rs replays them with pente's optimizers.

Run: python bench/reference/optim_torch.py
"""
import json
import math
import pathlib

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

STEPS = 20
init = {"w": torch.randn(2, 3), "b": torch.randn(3)}
a = {"w": torch.rand(2, 3) + 0.5, "b": torch.rand(3) + 0.5}
c = {"w": torch.randn(2, 3), "b": torch.randn(3)}


def flat(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def lion_step(params, state, lr, beta1, beta2, weight_decay):
    # lion-pytorch (lucidrains), update_fn: decay, sign of the interpolation, then the moment.
    with torch.no_grad():
        for p in params:
            m = state.setdefault(p, torch.zeros_like(p))
            p.mul_(1 - lr * weight_decay)
            update = (m * beta1 + p.grad * (1 - beta1)).sign()
            p.add_(update, alpha=-lr)
            m.mul_(beta2).add_(p.grad, alpha=1 - beta2)


def run(make, lion=None):
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    opt = make(list(params.values())) if make else None
    state = {}
    for _ in range(STEPS):
        for k, p in params.items():
            p.grad = (a[k] * (p.detach() - c[k])).clone()
        if lion:
            lion_step(list(params.values()), state, **lion)
        else:
            opt.step()
    return {k: flat(v) for k, v in params.items()}


rmsprop = [
    {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.0, "momentum": 0.9, "centered": False},
    {"lr": 0.02, "alpha": 0.95, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": True},
    {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1, "momentum": 0.8, "centered": True},
]
adagrad = [
    {"lr": 0.1, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    {"lr": 0.2, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6},
]
lion = [
    {"lr": 0.3, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0},
    {"lr": 0.15, "beta1": 0.8, "beta2": 0.95, "weight_decay": 0.5},
]
doc = {
    "written_by": f"bench/reference/optim_torch.py, torch {torch.__version__}",
    "steps": STEPS,
    "init": {k: flat(v) for k, v in init.items()},
    "a": {k: flat(v) for k, v in a.items()},
    "c": {k: flat(v) for k, v in c.items()},
    "rmsprop": [{"config": h, "final": run(lambda ps, h=h: torch.optim.RMSprop(ps, **h))} for h in rmsprop],
    "adagrad": [{"config": h, "final": run(lambda ps, h=h: torch.optim.Adagrad(ps, **h))} for h in adagrad],
    "lion": [{"config": h, "final": run(None, lion=h)} for h in lion],
}


def lrs(make_sched, base_lr, n):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


one_cycle = [
    {"max_lr": 0.1, "total_steps": 50, "pct_start": 0.3, "anneal_strategy": "cos", "div_factor": 25.0,
     "final_div_factor": 1e4, "three_phase": False},
    {"max_lr": 2.0, "total_steps": 37, "pct_start": 0.25, "anneal_strategy": "linear", "div_factor": 10.0,
     "final_div_factor": 100.0, "three_phase": False},
    {"max_lr": 0.5, "total_steps": 40, "pct_start": 0.3, "anneal_strategy": "cos", "div_factor": 20.0,
     "final_div_factor": 50.0, "three_phase": True},
]
doc["one_cycle"] = [
    {"config": h, "lrs": lrs(lambda o, h=h: torch.optim.lr_scheduler.OneCycleLR(o, cycle_momentum=False, **h),
                             1.0, h["total_steps"])}
    for h in one_cycle
]
# LinearLR: the factor goes linearly from start_factor to end_factor over total_iters steps.
linear = [
    {"base_lr": 0.3, "start_factor": 1.0, "end_factor": 0.1, "total_iters": 12, "steps": 20},
    {"base_lr": 1.0, "start_factor": 0.25, "end_factor": 1.0, "total_iters": 3, "steps": 8},
]
doc["linear"] = [
    {"config": h, "lrs": lrs(lambda o, h=h: torch.optim.lr_scheduler.LinearLR(
        o, start_factor=h["start_factor"], end_factor=h["end_factor"], total_iters=h["total_iters"]),
        h["base_lr"], h["steps"])}
    for h in linear
]
# nanoGPT's warm-up then linear decay to a floor: torch's SequentialLR of two LinearLRs.
warm = {"base_lr": 0.6, "warmup_steps": 4, "total_steps": 14, "min_lr": 0.06, "steps": 20}


def warm_sched(o):
    w, t = warm["warmup_steps"], warm["total_steps"]
    up = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / w, end_factor=1.0, total_iters=w - 1)
    down = torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=warm["min_lr"] / warm["base_lr"],
                                             total_iters=t - w)
    return torch.optim.lr_scheduler.SequentialLR(o, [up, down], milestones=[w])


doc["warmup_linear"] = {"config": warm, "lrs": lrs(warm_sched, warm["base_lr"], warm["steps"])}
out = pathlib.Path(__file__).resolve().parents[2] / "nn/tests/fixtures/optim.json"
out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
print(f"wrote {out} ({out.stat().st_size} bytes)")
