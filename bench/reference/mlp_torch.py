"""mlp-mnist with PyTorch: an MLP 784→512→256→10 with ReLU, mean softmax cross-entropy
(`F.cross_entropy` on the logits), Adam lr 1e-3, f32, on every core.

Data: 16 batches built before timing, inputs uniform in [0, 1), labels uniform in 0..9, cycled.
Weights: PyTorch's default `nn.Linear` initialization, seed 0. 20 warm-up steps, then the timed
ones; a step is forward, backward and the optimizer's update, as in a training loop.
Figure: training samples per second. The check is the loss of the last step.

With `bf16`, the forward and the loss run under `torch.autocast("cpu", dtype=torch.bfloat16)`
(impl `torch-bf16`): bf16 products, f32 weights and optimizer.

Usage: python mlp_torch.py [batch=64] [warmup=20] [steps=200] [f32|bf16]
"""
import torch
import torch.nn.functional as F
from torch import nn

from harness import autocast, cores, emit, impl_name, int_args, precision_arg, timed_steps


def main():
    batch, warmup, steps = int_args(64, 20, 200)
    precision = precision_arg()
    torch.set_num_threads(cores())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(torch.rand(batch, 784), torch.randint(0, 10, (batch,))) for _ in range(16)]

    def step(i):
        x, y = batches[i % len(batches)]
        with autocast(precision):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    seconds, last = timed_steps(warmup, steps, step, sync=lambda loss: loss.item())
    emit("mlp-mnist", impl_name("torch", precision), f"batch={batch}", "samples_per_s", batch * steps / seconds, steps, seconds, last,
         torch.__version__, torch.get_num_threads())


if __name__ == "__main__":
    main()
