"""JAX's derivatives of composite functions of pente's ops, as a fixture for pente's tests.

For each function f: R^n -> R below (its input reshaped to the shape given, its constants drawn
once from a seeded NumPy generator), JAX computes in float64 (`jax_enable_x64`):

  value     f(x)
  grad      jax.grad(f)(x)                      (n,)
  hessian   jax.hessian(f)(x)                   (n, n)
  jvp       jax.jvp(f, (x,), (v,))              f(x) and grad · v, for the tangent v stored
  hvp       jax.jvp(jax.grad(f), (x,), (v,))[1] (n,), forward over reverse

and writes them, with x, v and the constants, to tests/fixtures/jax_autodiff.json (root package).
tests/jax_crosscheck.rs builds the same functions on pente's tape and checks value, gradient and
Hessian (by double backward, row by row) against it to 1e-10. Every number is written with
Python's shortest round-trip repr, so the f64 values are exact.

Regenerate (from the repository root, with the versions of requirements.txt):

    python bench/reference/jax_autodiff.py [tests/fixtures/jax_autodiff.json]

A function here and its twin in tests/jax_crosscheck.rs must change together: the test finds
its functions by name and fails on a name it does not know.
"""
import json
import math
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402  (after the x64 switch)
import numpy as np  # noqa: E402

SEED = 2023
OUT = "tests/fixtures/jax_autodiff.json"


def layer_norm(x, w, b, eps):
    """pente's layer_norm: over the last axis, biased variance."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * w + b


# name -> (input shape, {constant name: shape}, f(x, **constants)). pente's twin of each takes
# the constants in this order.
FUNCTIONS = {
    "tanh_exp": (
        (6,), {},
        lambda x: jnp.sum(jnp.tanh(x) * jnp.exp(0.5 * x)),
    ),
    "softmax_log": (
        (2, 3), {"c": (2, 3)},
        lambda x, c: jnp.sum(c * jnp.log(jax.nn.softmax(x, axis=-1))),
    ),
    "mlp_tanh_gelu": (
        (2, 3), {"w1": (3, 4), "b1": (4,), "w2": (4, 2), "b2": (2,), "c": (2, 2)},
        lambda x, w1, b1, w2, b2, c: jnp.sum(
            c * jax.nn.gelu(jnp.tanh(x @ w1 + b1) @ w2 + b2, approximate=False)),
    ),
    "layer_norm": (
        (2, 4), {"w": (4,), "b": (4,), "c": (2, 4)},
        lambda x, w, b, c: jnp.sum(c * jnp.tanh(layer_norm(x, w, b, 1e-5))),
    ),
    "logsumexp": (
        (2, 3), {"c": (2,)},
        lambda x, c: jax.scipy.special.logsumexp(x)
        + jnp.sum(c * jax.scipy.special.logsumexp(x, axis=-1)),
    ),
    "matmul_chain": (
        (3, 3), {"a": (3, 3), "c": (3, 3)},
        lambda x, a, c: jnp.sum(c * jnp.tanh(x @ a @ x.T)),
    ),
    "attention": (
        (3, 4), {"wq": (4, 2), "wk": (4, 2), "wv": (4, 2), "c": (3, 2)},
        lambda x, wq, wk, wv, c: jnp.sum(
            c * (jax.nn.softmax((x @ wq) @ (x @ wk).T / math.sqrt(2.0), axis=-1) @ (x @ wv))),
    ),
    "softplus_erf_sigmoid": (
        (5,), {},
        lambda x: jnp.sum(jax.nn.softplus(x) * jax.scipy.special.erf(x))
        + jnp.sum(jnp.sqrt(x * x + 1.0) * jax.nn.sigmoid(x)),
    ),
}


def tensor(a):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT
    rng = np.random.default_rng(SEED)
    cases = []
    for name, (shape, const_shapes, fn) in FUNCTIONS.items():
        x = rng.normal(0.0, 1.0, size=shape)
        v = rng.normal(0.0, 1.0, size=shape)
        consts = {k: rng.normal(0.0, 0.7, size=s) for k, s in const_shapes.items()}
        n = x.size

        def f(flat):
            return fn(flat.reshape(shape), **{k: jnp.asarray(c) for k, c in consts.items()})

        xf, vf = jnp.asarray(x.reshape(-1)), jnp.asarray(v.reshape(-1))
        value = f(xf)
        grad = jax.grad(f)(xf)
        hessian = jax.hessian(f)(xf)
        primal, tangent = jax.jvp(f, (xf,), (vf,))
        hvp = jax.jvp(jax.grad(f), (xf,), (vf,))[1]
        assert hessian.shape == (n, n) and np.all(np.isfinite(hessian)), name
        assert abs(float(primal) - float(value)) <= 1e-14 * max(1.0, abs(float(value))), name
        cases.append({
            "name": name,
            "x": tensor(x),
            "constants": [dict(name=k, **tensor(c)) for k, c in consts.items()],
            "tangent": tensor(v),
            "value": float(value),
            "grad": [float(g) for g in grad],
            "hessian": [[float(h) for h in row] for row in hessian],
            "jvp": {"primal": float(primal), "tangent": float(tangent)},
            "hvp": [float(h) for h in hvp],
        })
    fixture = {
        "generator": "bench/reference/jax_autodiff.py",
        "jax": jax.__version__,
        "dtype": "float64",
        "seed": SEED,
        "functions": cases,
    }
    with open(out, "w") as fh:
        json.dump(fixture, fh, indent=1)
        fh.write("\n")
    print(f"wrote {out}: {len(cases)} functions")


if __name__ == "__main__":
    main()
