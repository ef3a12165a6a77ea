"""Images/second of a jaxreid train step (ResNet18 and ResNet50, batch 32, 256x128).

  python benchmarks/train_step.py [--batch 32] [--height 256 --width 128] [--steps 10]

Times the compiled, data-parallel train step of jaxreid.train on every local device, with a
fixed random batch already on device (the input pipeline is not part of the figure). Prints
a Markdown table; docs/benchmarks.md records the figures with machine and date.
"""

import argparse
import platform
import time

import jax
import numpy as np

from jaxreid import config as config_lib
from jaxreid.training import steps as steps_lib
from jaxreid.training.engine import Engine


def benchmark(
    backbone: str, batch: int, height: int, width: int, steps: int, loss: str, channels: int
):
    config = config_lib.default_config()
    config.model.backbone = backbone
    config.model.width = channels
    config.data.image_size = (height, width)
    config.loss.name = loss
    config.num_train_steps = steps + 2
    num_classes = 100
    run = Engine(config, num_classes=num_classes, image_shape=(height, width, 3))
    state = run.init_state()
    health = steps_lib.healthy()
    rng = np.random.default_rng(0)
    data = run.mesh.global_batch(
        {
            "image": rng.normal(size=(batch, height, width, 3)).astype(np.float32),
            "label": (np.arange(batch) // 4 % num_classes).astype(np.int32),
        }
    )
    start = time.perf_counter()
    state, metrics, health = run.train_step(state, data, health)  # Compilation and the first step.
    jax.block_until_ready(metrics)
    compile_sec = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics, health = run.train_step(state, data, health)
    jax.block_until_ready(metrics)
    elapsed = time.perf_counter() - start
    return batch * steps / elapsed, compile_sec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--loss", default="softmax")
    parser.add_argument("--backbones", default="resnet18,resnet50")
    parser.add_argument("--channels", type=int, default=64, help="Width of the first stage.")
    args = parser.parse_args()
    devices = jax.devices()
    print(
        f"{platform.node()} | {platform.processor() or platform.machine()} | "
        f"{len(devices)} x {devices[0].device_kind} | jax {jax.__version__}"
    )
    print("\n| backbone | width | batch | input | loss | images/s | compile + first step (s) |")
    print("|---|---|---|---|---|---|---|")
    for backbone in args.backbones.split(","):
        ips, compile_sec = benchmark(
            backbone, args.batch, args.height, args.width, args.steps, args.loss, args.channels
        )
        print(
            f"| {backbone} | {args.channels} | {args.batch} | {args.height}x{args.width} | {args.loss} | "
            f"{ips:.1f} | {compile_sec:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
