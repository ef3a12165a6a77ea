"""Re-id train step on one accelerator: images/s, achieved FLOP/s and fraction of peak.

  python benchmarks/accelerator.py [--backbones resnet18,resnet50] [--dtypes float32,bfloat16]
                                   [--batches 64,128,256,512] [--size 256x128] [--steps 20]
                                   [--profile DIR] [--peak TFLOPS] [--quick]

The step is the benchmarks' re-id step (benchmarks/reid_step.py): ResNet backbone, embedding
128 + BN + ReLU + dropout, classifier, softmax cross-entropy + batch-hard triplet on the pooled
features, SGD Nesterov; parameters float32, compute in `--dtypes` (jaxreid.mixed_precision).
It runs on `jax.devices()[0]` with a fixed random batch already on the device (the input
pipeline is benchmarks/input_pipeline.py's subject). FLOPs per step come from XLA's cost
analysis of the compiled step; the peak is looked up from the device kind (PEAK_TFLOPS,
dense, no sparsity) or given with --peak. `--profile DIR` writes a jax.profiler trace of the
timed steps of every configuration (open it with TensorBoard's profile plugin or Perfetto).
`--quick` is a CPU smoke run (ResNet18, batch 2, 64x32, 2 steps, both dtypes).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

# This checkout's jaxreid (not an installed one) and the sibling benchmark module.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(_HERE), _HERE]

import jax  # noqa: E402

import reid_step  # noqa: E402

# Dense peak TFLOP/s per chip: (16-bit tensor ops, float32 as XLA runs it by default).
# On NVIDIA GPUs XLA's default precision lets float32 convolutions and matmuls use TF32
# tensor cores, so the float32 column is the TF32 peak; on TPUs float32 matmuls run as
# bf16 passes (default precision), so the bf16 peak is given for both.
# Sources (vendor data sheets, "dense" = half the "with sparsity" figure):
#   H100 SXM5 / H200 SXM: BF16 989.5, TF32 494.7 (NVIDIA H100 and H200 Tensor Core GPU
#     data sheets); H100 PCIe: BF16 756, TF32 378; H200 NVL: BF16 835.5, TF32 417.5.
#   A100 (SXM4 / PCIe): BF16 312, TF32 156 (NVIDIA A100 data sheet).
#   L4: BF16 121, TF32 60 (NVIDIA L4 data sheet).
#   TPU v4: 275 BF16; v5e: 197; v5p: 459; v6e (Trillium): 918 (Google Cloud TPU
#     system architecture pages, peak compute per chip).
PEAK_TFLOPS = {
    "H200 NVL": (835.5, 417.5),
    "H200": (989.5, 494.7),
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.5, 494.7),
    "A100": (312.0, 156.0),
    "L4": (121.0, 60.0),
    "TPU v4": (275.0, 275.0),
    "TPU v5 lite": (197.0, 197.0),  # v5e reports its device_kind as 'TPU v5 lite'.
    "TPU v5e": (197.0, 197.0),
    "TPU v5p": (459.0, 459.0),
    "TPU v5": (459.0, 459.0),  # v5p reports 'TPU v5'.
    "TPU v6 lite": (918.0, 918.0),  # v6e (Trillium).
    "TPU v6e": (918.0, 918.0),
}


def peak_tflops(device_kind: str, dtype: str) -> float | None:
    """The PEAK_TFLOPS entry whose key occurs in `device_kind` (longest key first, so
    'H200 NVL' wins over 'H200'); None for unknown devices (e.g. CPUs)."""
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in device_kind.lower():
            sixteen, thirty_two = PEAK_TFLOPS[key]
            return thirty_two if dtype == "float32" else sixteen
    return None


def run_config(backbone, dtype, batch, height, width, steps, profile_dir):
    """(images/s, seconds per step, FLOPs per step, compile seconds) of one configuration."""
    _, init_fn, step_fn = reid_step.build(backbone, dtype=dtype, triplet=True)
    device = jax.devices()[0]
    images, labels = reid_step.random_batch(batch, height, width)
    images, labels = jax.device_put((images, labels), device)
    state = jax.device_put(init_fn(images), device)
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = jax.jit(step_fn, donate_argnums=0).lower(state, images, labels, key).compile()
    compile_sec = time.perf_counter() - start
    flops = reid_step.compiled_flops(compiled)
    for _ in range(2):  # Warm-up (autotuning, allocator).
        state, loss = compiled(state, images, labels, key)
    jax.block_until_ready(loss)
    if profile_dir:
        jax.profiler.start_trace(os.path.join(profile_dir, f"{backbone}_{dtype}_{batch}"))
    start = time.perf_counter()
    for _ in range(steps):
        state, loss = compiled(state, images, labels, key)
    jax.block_until_ready(loss)
    elapsed = (time.perf_counter() - start) / steps
    if profile_dir:
        jax.profiler.stop_trace()
    return batch / elapsed, elapsed, flops, compile_sec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="resnet18,resnet50")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--batches", default="64,128,256,512")
    parser.add_argument("--size", default="256x128", help="HEIGHTxWIDTH")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile", default="", metavar="DIR", help="Write profiler traces.")
    parser.add_argument("--peak", type=float, default=0.0, help="Peak TFLOP/s (override).")
    parser.add_argument("--quick", action="store_true", help="Small CPU smoke run.")
    args = parser.parse_args()
    if args.quick:
        args.backbones, args.batches, args.size, args.steps = "resnet18", "2", "64x32", 2
    height, width = map(int, args.size.split("x"))
    device = jax.devices()[0]
    print(
        f"{time.strftime('%Y-%m-%d')} | {platform.node()} | {device.platform} | "
        f"{device.device_kind} | jax {jax.__version__}"
    )
    print(f"\nre-id train step (softmax + triplet), {height}x{width}, {args.steps} timed steps\n")
    print("| backbone | dtype | batch | images/s | ms/step | TFLOP/s | of peak | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for backbone in args.backbones.split(","):
        for dtype in args.dtypes.split(","):
            peak = args.peak or peak_tflops(device.device_kind, dtype)
            for batch in map(int, args.batches.split(",")):
                try:
                    ips, sec, flops, compile_sec = run_config(
                        backbone, dtype, batch, height, width, args.steps, args.profile
                    )
                except Exception as error:  # e.g. out of device memory at large batches.
                    message = str(error).splitlines()[0][:60]
                    print(f"| {backbone} | {dtype} | {batch} | failed: {message} |||||")
                    continue
                tflops = flops / sec / 1e12
                fraction = f"{tflops / peak:.1%}" if peak else "n/a"
                print(
                    f"| {backbone} | {dtype} | {batch} | {ips:.0f} | {sec * 1e3:.1f} | "
                    f"{tflops:.3g} | {fraction} | {compile_sec:.0f} |",
                    flush=True,
                )
    if args.profile:
        print(f"\nProfiler traces in {args.profile}/<backbone>_<dtype>_<batch>/")


if __name__ == "__main__":
    main()
