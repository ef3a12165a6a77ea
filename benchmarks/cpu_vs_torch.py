"""ResNet re-id train step on the CPU: JAX (each conv_impl) against PyTorch, interleaved.

  python benchmarks/cpu_vs_torch.py [--backbone resnet18] [--batch 16] [--height 256 --width 128]
                                    [--rounds 5] [--steps 2] [--impls xla,gemm_wgrad]

The same network (torchvision ResNet topology + embedding 128 + BN + ReLU + dropout 0.5 +
classifier, softmax cross-entropy, SGD Nesterov momentum 0.9, weight decay 5e-4) and the same
batch in both frameworks; PyTorch in channels_last float32 (its fastest CPU layout). Each
round times `--steps` steps of every JAX variant and of PyTorch back to back, so load from
other processes hits all of them alike; the table gives medians over rounds and the ratio of
step rates (JAX / PyTorch; > 1 = JAX faster). FLOP/s use XLA's cost analysis of the JAX step
(the same FLOPs for PyTorch) and are compared with `--peak` GFLOP/s (the development machine's
measured float32 FMA peak on 2 cores: 467; issue 14).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

if "--threads=1" in sys.argv or " ".join(sys.argv).find("--threads 1") >= 0:
    # Must be set before jax initialises its CPU client.
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )
import jax  # noqa: E402

# This checkout's jaxreid (not an installed one) and the sibling benchmark module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]
import reid_step  # noqa: E402


def torch_model(backbone: str, num_classes: int):
    """torchvision's ResNet18/50 topology + the re-id head, written out (torchvision is not a
    dependency)."""
    import torch
    from torch import nn

    class Basic(nn.Module):
        expansion = 1

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, planes, 3, stride, 1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
                nn.BatchNorm2d(planes),
            )
            self.short = _shortcut(cin, planes, stride)

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    class Bottle(nn.Module):
        expansion = 4

        def __init__(self, cin, planes, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, planes, 1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, planes * 4, 1, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
            self.short = _shortcut(cin, planes * 4, stride)

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    def _shortcut(cin, cout, stride):
        if stride == 1 and cin == cout:
            return nn.Identity()
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    block, sizes = {"resnet18": (Basic, (2, 2, 2, 2)), "resnet50": (Bottle, (3, 4, 6, 3))}[backbone]
    layers = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for i, n in enumerate(sizes):
        for j in range(n):
            layers.append(block(cin, 64 * 2**i, 2 if i > 0 and j == 0 else 1))
            cin = 64 * 2**i * block.expansion
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers += [nn.Linear(cin, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5)]
    layers.append(nn.Linear(128, num_classes))
    return nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18", choices=("resnet18", "resnet50"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="Steps per variant per round.")
    parser.add_argument("--impls", default="xla,gemm_wgrad", help="JAX conv_impl values.")
    parser.add_argument("--peak", type=float, default=467.0, help="Machine peak, GFLOP/s.")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="1: both frameworks single-threaded (less distorted by other processes' load "
        "than spinning thread pools); 0: their defaults (all cores).",
    )
    args = parser.parse_args()

    import torch

    if args.threads == 1:
        torch.set_num_threads(1)

    num_classes = 100
    images, labels = reid_step.random_batch(args.batch, args.height, args.width, num_classes)
    key = jax.random.key(1)

    runners, flops = {}, 0.0
    for impl in args.impls.split(","):
        _, init_fn, step_fn = reid_step.build(
            args.backbone, num_classes=num_classes, conv_impl=impl, triplet=False
        )
        step = jax.jit(step_fn, donate_argnums=0)
        state = init_fn(images)
        compiled = step.lower(state, images, labels, key).compile()
        flops = reid_step.compiled_flops(compiled)
        holder = {"state": state}

        def run(n, holder=holder, compiled=compiled):
            for _ in range(n):
                holder["state"], loss = compiled(holder["state"], images, labels, key)
            jax.block_until_ready(loss)

        run(1)  # Warm-up.
        runners[f"jax {impl}"] = run

    model = torch_model(args.backbone, num_classes).to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    x = torch.from_numpy(np.asarray(images).transpose(0, 3, 1, 2).copy()).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.from_numpy(np.array(labels)).long()

    def run_torch(n):
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    run_torch(1)
    runners["torch channels_last"] = run_torch

    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)

    load = os.getloadavg()[0]
    print(
        f"{time.strftime('%Y-%m-%d')} | {platform.node()} | {os.cpu_count()} cores | "
        f"jax {jax.__version__} | torch {torch.__version__} ({torch.get_num_threads()} threads) "
        f"| load average {load:.1f} | threads {args.threads or 'default'}"
    )
    print(
        f"\n{args.backbone}, batch {args.batch}, {args.height}x{args.width}, float32, "
        f"{flops / args.batch / 1e9:.2f} GFLOP/image (XLA cost analysis), "
        f"median of {args.rounds} interleaved rounds x {args.steps} steps\n"
    )
    print("| variant | s/step | images/s | vs torch | GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|")
    torch_time = float(np.median(times["torch channels_last"]))
    for name, values in times.items():
        t = float(np.median(values))
        print(
            f"| {name} | {t:.3f} | {args.batch / t:.1f} | {torch_time / t:.2f}x | "
            f"{flops / t / 1e9:.0f} | {flops / t / 1e9 / args.peak:.0%} |"
        )
    # Per-round ratios show the spread the load causes.
    for name, values in times.items():
        if name.startswith("jax"):
            ratios = np.asarray(times["torch channels_last"]) / np.asarray(values)
            print(f"\n{name} / torch per round: " + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
