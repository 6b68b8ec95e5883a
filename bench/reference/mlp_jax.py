"""mlp-mnist with JAX: the same MLP 784→512→256→10 (ReLU), mean softmax cross-entropy, Adam
lr 1e-3 (optax), f32, the whole training step — forward, gradient and update — compiled once by
`jax.jit`, on the CPU backend.

Data: 16 batches built before timing (inputs uniform in [0, 1), labels uniform in 0..9), cycled.
Weights: uniform in ±1/√fan_in, biases zero, seed 0. Compilation happens in the first warm-up
step, so the timed steps measure the compiled step only. 20 warm-up steps, then the timed ones.
Figure: training samples per second. The check is the loss of the last step.

Usage: python mlp_jax.py [batch=64] [warmup=20] [steps=200]
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness import cores, emit, int_args, timed_steps

SIZES = (784, 512, 256, 10)


def init(key):
    """[(weight (in, out), bias (out,))] per layer."""
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        key, sub = jax.random.split(key)
        bound = 1.0 / np.sqrt(n_in)
        params.append((jax.random.uniform(sub, (n_in, n_out), jnp.float32, -bound, bound),
                       jnp.zeros((n_out,), jnp.float32)))
    return params


def loss_fn(params, x, y):
    h = x
    for depth, (w, b) in enumerate(params):
        h = h @ w + b
        if depth < len(params) - 1:
            h = jax.nn.relu(h)
    return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()


def main():
    batch, warmup, steps = int_args(64, 20, 200)
    optimizer = optax.adam(1e-3)
    params = init(jax.random.PRNGKey(0))
    state = [params, optimizer.init(params)]
    rng = np.random.default_rng(0)
    batches = [(jnp.asarray(rng.random((batch, 784), dtype=np.float32)),
                jnp.asarray(rng.integers(0, 10, batch, dtype=np.int32))) for _ in range(16)]

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def step(i):
        state[0], state[1], loss = train_step(state[0], state[1], *batches[i % len(batches)])
        return loss

    def sync(loss):
        jax.block_until_ready(state[0])
        return float(loss)

    seconds, last = timed_steps(warmup, steps, step, sync=sync)
    emit("mlp-mnist", "jax-jit", f"batch={batch}", "samples_per_s", batch * steps / seconds, steps, seconds, last,
         jax.__version__, cores(), devices=str(jax.devices()))


if __name__ == "__main__":
    main()
