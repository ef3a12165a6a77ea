"""The re-id train step on the CPU: jaxreid's compiled step against a PyTorch twin, interleaved.

  python benchmarks/cpu_vs_torch.py [--jobs main,resnet18,resnet50] [--rounds 7] [--steps 5]
                                    [--variants 'default;model.conv_impl=gemm_wgrad']

Jobs (network, input, batch):
  main      the main job's network, configs/synthetic.py: ResNet18 of width 16, 64x32, batch 32
            (8 identities x 4 images, RGB and depth alternating), BNNeck head (dropout 0.5),
            softmax on the BNNeck logits + the weighted regularised triplet on the pooled
            features with cross-modal mining, SGD Nesterov momentum 0.9, weight decay 5e-4 on
            kernels, 400 classes.
  resnet18, resnet50
            the same head and losses on the full-size backbone (width 64), 256x128, batch 16.

The JAX side is the library's own step (`jaxreid.training.engine.Engine.train_step`: the loss
of `jaxreid.losses.compose`, the non-finite guard, the optimiser of config.optim), with the
batch already on the device; every `--variants` entry (';'-separated, each a space-separated
list of config overrides 'key=value' and XLA options 'xla:name=value', 'default' = none) is compiled in the same process. The PyTorch twin
builds the same topology, head, losses and optimiser (torchvision's ResNet layout written out;
constant learning rate) in channels_last float32 (its fastest CPU layout), and, with
`--torch-contiguous`, also in the default layout. Each round times `--steps` steps of every
variant and of PyTorch back to back, so load from other processes hits all alike; the table
gives medians over rounds and the ratio of step rates (JAX / PyTorch channels_last; > 1 = JAX
faster). FLOP/s use XLA's cost analysis of the JAX step and are compared with `--peak`
GFLOP/s (the development machine's measured float32 FMA peak on 2 cores: 467; issue 14).
The load average before and after the runs is printed: the machine may be shared.
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

# This checkout's jaxreid (not an installed one) and the sibling benchmark modules.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]
import torch_twin  # noqa: E402

# (backbone, width, (height, width), batch) of each job.
JOBS = {
    "main": ("resnet18", 16, (64, 32), 32),
    "resnet18": ("resnet18", 64, (256, 128), 16),
    "resnet50": ("resnet50", 64, (256, 128), 16),
}
NUM_CLASSES = 400  # configs/synthetic.py: 400 training identities.


def job_config(job: str, overrides: list[str]):
    """configs/synthetic.py's config with the job's backbone, width, input and batch."""
    from jaxreid import config as config_lib

    sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "configs"))
    import synthetic

    backbone, width, size, batch = JOBS[job]
    config = synthetic.get_config("")
    config.model.backbone = backbone
    config.model.width = width
    config.data.image_size = size
    config.batch.num_identities = batch // 4
    config.batch.images_per_identity = 4
    config_lib.apply_overrides(config, overrides)
    return config


def random_batch(batch: int, size: tuple[int, int], num_classes: int, seed: int = 0) -> dict:
    """image [B, H, W, 3] float32 N(0, 1), label [B] int32 in P x K order (K = 4), modality
    [B] int32 alternating 0/1 (two images of each identity per modality)."""
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(batch, *size, 3)).astype(np.float32),
        "label": (np.arange(batch) // 4 % num_classes).astype(np.int32),
        "modality": (np.arange(batch) % 2).astype(np.int32),
    }


def compiled_flops(compiled) -> float:
    """FLOPs of one call of a compiled XLA executable (XLA's cost analysis; 0 if none)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # Older jax: one dict per device program.
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


def _xla_option_value(text: str):
    """An XLA compiler option's value from its text: the compile-options path needs Python
    bools and ints (the XLA_FLAGS spelling 'true' is refused there); enums and lists stay
    strings, spelled as the proto names them (e.g. LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        return text


def jax_runner(job: str, overrides: list[str], batch_np: dict):
    """(run(n) timing n steps of the library's step, FLOPs per step, config).

    overrides: config overrides 'key=value', and XLA compiler options 'xla:name=value'
    (e.g. 'xla:xla_cpu_enable_fast_math=true'), which compile this variant only, so that
    XLA flags are compared in one process, interleaved."""
    from jaxreid.training import steps as steps_lib
    from jaxreid.training.engine import Engine

    options = {
        name: _xla_option_value(value)
        for name, value in (o[4:].split("=", 1) for o in overrides if o.startswith("xla:"))
    }
    config = job_config(job, [o for o in overrides if not o.startswith("xla:")])
    engine = Engine(config, NUM_CLASSES, (*config.data.image_size, 3))
    holder = {"state": engine.init_state(), "health": steps_lib.healthy()}
    data = engine.mesh.global_batch(batch_np)
    compiled = engine.train_step.lower(holder["state"], data, holder["health"]).compile(
        compiler_options=options or None
    )

    def run(n):
        for _ in range(n):
            holder["state"], metrics, holder["health"] = compiled(
                holder["state"], data, holder["health"]
            )
        jax.block_until_ready(metrics)

    run(1)  # Warm-up.
    return run, compiled_flops(compiled), config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="main", help=f"','-separated of {tuple(JOBS)}.")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="Steps per variant per round.")
    parser.add_argument(
        "--variants",
        default="default",
        help="';'-separated JAX variants, each 'default' or space-separated overrides.",
    )
    parser.add_argument("--torch-contiguous", action="store_true", help="Also time NCHW.")
    parser.add_argument("--peak", type=float, default=467.0, help="Machine peak, GFLOP/s.")
    parser.add_argument(
        "--malloc-default",
        action="store_true",
        help="Leave glibc malloc's thresholds alone (jaxreid.main sets them: host_memory).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="1: both frameworks single-threaded; 0: their defaults (all cores).",
    )
    args = parser.parse_args()
    for job in args.jobs.split(","):
        if job not in JOBS:
            parser.error(f"--jobs: {job!r} is not one of {tuple(JOBS)}")

    import torch

    from jaxreid import host_memory

    # As jaxreid.main does; it applies to PyTorch's allocations in this process too.
    kept = not args.malloc_default and host_memory.keep_freed_memory()
    if args.threads == 1:
        torch.set_num_threads(1)
    load_before = os.getloadavg()
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} | {platform.node()} | {os.cpu_count()} cores | "
        f"jax {jax.__version__} | torch {torch.__version__} ({torch.get_num_threads()} threads)"
        f" | XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r} | malloc thresholds "
        f"{'jaxreid.host_memory' if kept else 'glibc default'} | load average before "
        f"{load_before[0]:.1f}",
        flush=True,
    )
    for job in args.jobs.split(","):
        backbone, width, size, batch = JOBS[job]
        batch_np = random_batch(batch, size, NUM_CLASSES)
        runners, flops = {}, {}
        for variant in args.variants.split(";"):
            overrides = [] if variant.strip() == "default" else variant.split()
            name = f"jax {variant.strip()}"
            runners[name], flops[name], config = jax_runner(job, overrides, batch_np)
        torch_layouts = ["channels_last"] + (["contiguous"] if args.torch_contiguous else [])
        for layout in torch_layouts:
            runners[f"torch {layout}"] = torch_twin.runner(
                backbone, width, NUM_CLASSES, batch_np, config, channels_last=layout != "contiguous"
            )

        times = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                run(args.steps)
                times[name].append((time.perf_counter() - start) / args.steps)

        print(
            f"\n{job}: {backbone} width {width}, batch {batch}, {size[0]}x{size[1]}, float32, "
            f"{max(flops.values()) / batch / 1e9:.3f} GFLOP/image (XLA cost analysis of the "
            f"convolution variants; the im2col GEMMs count the same FLOPs), median of "
            f"{args.rounds} interleaved rounds x {args.steps} steps, load average now "
            f"{os.getloadavg()[0]:.1f}\n"
        )
        print("| variant | ms/step | images/s | vs torch channels_last | GFLOP/s | of peak |")
        print("|---|---|---|---|---|---|")
        torch_time = float(np.median(times["torch channels_last"]))
        # One FLOP count for every row (the network's): throughput in the same units.
        network_flops = max(flops.values())
        for name, values in times.items():
            t = float(np.median(values))
            print(
                f"| {name} | {1e3 * t:.1f} | {batch / t:.0f} | {torch_time / t:.2f}x | "
                f"{network_flops / t / 1e9:.0f} | {network_flops / t / 1e9 / args.peak:.0%} |"
            )
        # Per-round ratios show the spread the load causes.
        for name, values in times.items():
            if name.startswith("jax"):
                ratios = np.asarray(times["torch channels_last"]) / np.asarray(values)
                print(f"\n{name} / torch per round: " + ", ".join(f"{r:.2f}" for r in ratios))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
