"""How fast two trainings that differ only in float32 round-off drift apart (issue 24).

  python benchmarks/divergence.py [--steps 600] [--recipes one_stream,bnneck,wrt,bnneck_wrt]
                                  [--perturbation devices|ulp|none] [--every 100]

A different processor sums in another order: every gradient, BatchNorm statistic and
convolution differs in its last bits. This script emulates that on one machine and follows
the two trajectories in lockstep, on the same batches, from the same seed:

  devices  the reference trains on one device, the other on two (XLA_FLAGS
           --xla_force_host_platform_device_count=2, set here): every batch reduction is two
           partial sums and a psum, the same mathematics in another order.
  ulp      both on one device; the other starts from initial parameters moved by one ulp
           (np.nextafter towards +inf), a relative change of ~6e-8.
  none     the control: two identical runs, which must stay bit-identical (distance 0).

Recipes, all at the main job's width, data, batch and learning-rate schedule
(configs/synthetic.py; its first --steps steps of 6,000):

  one_stream  softmax on the ReLU embedding (configs/synthetic.py:one_stream)
  bnneck      softmax + BNNeck head (cosine ranking), no triplet
  wrt         softmax + WRT (pooled features, cross-modal mining), linear head
  bnneck_wrt  BNNeck + WRT: the main job

Prints, per recipe, the relative L2 distance between the two runs of the parameters
(||a - b|| / ||a|| over every parameter), of the training loss, and of the evaluation
embeddings of 64 fixed validation images (32 per modality) at several steps; the growth
rate of the parameter distance while it is small (its doubling time in steps, from a
least-squares line through ln distance); the largest one-step growth factor of that
distance (a discrete event, such as a mining argmax that flips, would show as a jump of
orders of magnitude; smooth chaotic growth as a factor near the doubling rate); and the
validation mAP (full protocol, mean of the cross-modal pairs, as the main job selects its
checkpoint) of both runs at the last step. docs/benchmarks.md records the figures.

Measured (2026-12-07, 2-core AMD EPYC, load ~10, jax 0.10.2, 300 steps, 'devices'): every
recipe is fully decorrelated by step ~100 (embeddings of fixed images differ by more than
their norm); with WRT the difference goes from round-off to 1e-3 in steps 5-7, without it
by step ~25. `--gradients` shows no discrete switch at the start (one ulp changes the
gradients by ~1e-5 in every leaf, except a bias before a BatchNorm whose exact gradient is 0).
"""

from __future__ import annotations

import os

if __name__ == "__main__" and "xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""
):
    # Before JAX is imported: the 'devices' perturbation needs a second CPU device (only when
    # run as a script: a test that imports the helpers leaves its process's flags alone).
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()

import argparse
import importlib.util
import math
import pathlib
import platform
import time

import jax
import numpy as np

from jaxreid.data import loading
from jaxreid.evaluation import experiment as evaluation
from jaxreid.training import steps as steps_lib
from jaxreid.training import supervised
from jaxreid.training.engine import Engine

RECIPES = ("one_stream", "bnneck", "wrt", "bnneck_wrt")
PERTURBATIONS = ("devices", "ulp", "none")
MAIN_JOB = pathlib.Path(__file__).resolve().parent.parent / "configs" / "synthetic.py"
# Fit the growth rate while the parameter distance is in this range: above the first steps'
# round-off floor and below saturation (the runs then differ like two seeds).
FIT_RANGE = (1e-7, 1e-3)
TRACE_STEPS = 60  # Per-leaf distances are kept for these first steps (to locate a jump).


def recipe_config(recipe: str):
    """The main job's config (configs/synthetic.py) with the head and losses of `recipe`."""
    spec = importlib.util.spec_from_file_location("synthetic_config", MAIN_JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if recipe == "bnneck_wrt":
        return module.get_config("")
    config = module.get_config("one_stream")
    if recipe == "bnneck":
        config.model.head = "bnneck"
        config.eval.metric = "cosine"
    elif recipe == "wrt":
        config.loss.name = "softmax+wrt"
        config.loss.triplet_feature = "pooled"
        config.loss.mining = "cross_modal"
    elif recipe != "one_stream":
        raise ValueError(f"--recipes: unknown recipe {recipe!r}; expected one of {RECIPES}")
    return config


def relative_distance(a, b) -> float:
    """||a - b|| / ||a|| over every leaf of two pytrees of the same structure (float64)."""
    a = [np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(a)]
    b = [np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(b)]
    num = math.sqrt(sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b)))
    den = math.sqrt(sum(float(np.sum(x**2)) for x in a))
    return num / den if den else float(num > 0)


def doubling_steps(distance: np.ndarray, fit_range=FIT_RANGE) -> float:
    """Steps over which `distance` ([T], step t at index t - 1) doubles, from a least-squares
    line through ln distance at the steps where it lies in `fit_range`; nan if fewer than
    3 such steps (it crosses the range in one or two steps), inf if it does not grow."""
    t = np.flatnonzero((distance > fit_range[0]) & (distance < fit_range[1]))
    if len(t) < 3:
        return float("nan")
    slope = np.polyfit(t, np.log(distance[t]), 1)[0]
    # A constant fits a slope of round-off size (~1e-17, its sign depends on the LAPACK
    # build): below 1e-9 per step (doubling in 7e8 steps) it does not grow.
    return math.log(2) / slope if slope > 1e-9 else float("inf")


def largest_jump(distance: np.ndarray, upper: float = FIT_RANGE[1]) -> tuple[float, int]:
    """(ratio, t): the largest one-step ratio distance[t] / distance[t-1] (steps counted from
    1, distance[0] at step 1) over the steps where 0 < distance[t-1] < `upper`; (1.0, 0) if
    none. From the first non-zero round-off difference on: a discrete switch shows there."""
    i = np.flatnonzero((distance[:-1] > 0) & (distance[:-1] < upper))
    if not len(i):
        return 1.0, 0
    ratios = distance[i + 1] / distance[i]
    k = int(np.argmax(ratios))
    return float(ratios[k]), int(i[k]) + 2


def leaf_distances(a, b) -> dict[str, float]:
    """{leaf path: ||a - b||} of two pytrees of the same structure (float64)."""
    return {
        jax.tree_util.keystr(path): float(
            np.linalg.norm(np.asarray(x, np.float64) - np.asarray(y, np.float64))
        )
        for (path, x), y in zip(jax.tree.leaves_with_path(a), jax.tree.leaves(b))
    }


def run_pair(config, perturbation, num_steps, every, data):
    """Trains the reference and the perturbed run in lockstep; returns their divergence."""
    splits, norms, train_sets, index = data
    devices = jax.devices()
    shape = loading.image_shape(config)
    optim = supervised.resolved_optim(config.optim, train_sets, config)
    # Both keep the main job's 6,000-step schedule: these are its first num_steps steps.
    ref = Engine(config, index.num_classes, shape, devices=devices[:1], optim=optim)
    other = ref
    if perturbation == "devices":
        other = Engine(config, index.num_classes, shape, devices=devices[:2], optim=optim)
    state_a = ref.init_state()
    if perturbation == "ulp":
        params = jax.tree.map(
            lambda p: np.nextafter(np.asarray(p), np.float32(np.inf)), state_a.params
        )
        state_b = other.state_from_variables(params, state_a.model_state)
    else:
        state_b = other.init_state()
    initial = relative_distance(state_a.params, state_b.params)
    health_a = jax.device_put(steps_lib.healthy(), ref.mesh.replicated)
    health_b = jax.device_put(steps_lib.healthy(), other.mesh.replicated)
    fixed = {m: splits["val"][m].select(np.arange(min(32, len(splits["val"][m])))) for m in norms}

    def embed_fixed(engine, state):
        return np.concatenate(
            [engine.embed(state.variables, s, norms[m]) for m, s in fixed.items()]
        )

    batches = supervised.train_batches(config, train_sets, norms, index, 0)
    param_dist, loss_dist, embed_dist, leaves = [], [], {}, []
    tick = time.perf_counter()
    for step in range(1, num_steps + 1):
        batch = next(batches)
        state_a, metrics_a, health_a = ref.train_step(
            state_a, ref.mesh.global_batch(batch), health_a
        )
        state_b, metrics_b, health_b = other.train_step(
            state_b, other.mesh.global_batch(batch), health_b
        )
        param_dist.append(relative_distance(state_a.params, state_b.params))
        if step <= TRACE_STEPS:
            leaves.append(leaf_distances(state_a.params, state_b.params))
        loss_a, loss_b = float(metrics_a["loss"]), float(metrics_b["loss"])
        loss_dist.append(abs(loss_a - loss_b) / abs(loss_a))
        if step % every == 0 or step == num_steps:
            embed_dist[step] = relative_distance(
                embed_fixed(ref, state_a), embed_fixed(other, state_b)
            )
            print(
                f"  step {step}: params {param_dist[-1]:.1e}, embeddings "
                f"{embed_dist[step]:.1e} ({time.perf_counter() - tick:.0f} s)",
                flush=True,
            )
    train_sec = time.perf_counter() - tick
    del batches  # Releases the tf.data iterator and its threads.
    if steps_lib.describe_health(health_a) or steps_lib.describe_health(health_b):
        raise RuntimeError(
            f"non-finite values: {steps_lib.describe_health(health_a)}, "
            f"{steps_lib.describe_health(health_b)}"
        )

    def val_map(engine, state):
        embed = engine.embedder({m: state.variables for m in norms}, norms)
        pairs = evaluation.evaluate_pairs(embed, splits["val"], config.eval, "full")
        return 100 * evaluation.validation_score(config, pairs)

    ratio, jump_step = largest_jump(np.array(param_dist))
    jumped = []
    if 2 <= jump_step <= len(leaves):
        # The leaves whose own distance grew most in that step: where the switch happened.
        before, after = leaves[jump_step - 2], leaves[jump_step - 1]
        jumped = sorted(after, key=lambda k: -(after[k] - before[k]))[:3]
        jumped = [(k, before[k], after[k]) for k in jumped]
    return {
        "jump": (ratio, jump_step, jumped),
        "initial": initial,
        "param": np.array(param_dist),
        "loss": np.array(loss_dist),
        "embed": embed_dist,
        "val_map": (val_map(ref, state_a), val_map(other, state_b)),
        "train_sec": train_sec,
    }


def gradient_sensitivity(config, data, top: int = 6):
    """One-step gain: the relative change of the loss, of the pooled features and of each
    gradient leaf when the initial parameters move by one ulp (same batch, same device).

    Returns (loss change, feature change, global gradient change, [(leaf, change)] largest
    first). A smooth step changes them by ~1e-7 (the perturbation); a change near 1 means a
    discrete switch (a tie broken, a near-zero variance divided by).
    """
    from jaxreid import losses

    _splits, norms, train_sets, index = data
    engine = Engine(
        config, index.num_classes, loading.image_shape(config), devices=jax.devices()[:1]
    )
    state = engine.init_state()
    batch = next(supervised.train_batches(config, train_sets, norms, index, 0))

    @jax.jit
    def loss_and_grads(params):
        def loss_fn(params):
            (embedding, intermediates), _ = engine.model.apply(
                {"params": params, **state.model_state},
                batch["image"],
                train=True,
                labels=batch["label"],
                modality=batch.get("modality"),
                mutable=list(state.model_state.keys()),
                rngs={"dropout": engine.dropout_key},
            )
            loss, _ = losses.compose(
                config.loss, embedding, intermediates, batch["label"], batch.get("modality")
            )
            return loss, intermediates["pooled"]

        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    (loss_a, pooled_a), grads_a = loss_and_grads(state.params)
    moved = jax.tree.map(lambda p: np.nextafter(np.asarray(p), np.float32(np.inf)), state.params)
    (loss_b, pooled_b), grads_b = loss_and_grads(moved)
    leaves = [
        (jax.tree_util.keystr(path), relative_distance(a, b))
        for (path, a), b in zip(jax.tree.leaves_with_path(grads_a), jax.tree.leaves(grads_b))
    ]
    leaves.sort(key=lambda x: -x[1])
    return (
        abs(float(loss_a) - float(loss_b)) / abs(float(loss_a)),
        relative_distance(pooled_a, pooled_b),
        relative_distance(grads_a, grads_b),
        leaves[:top],
    )


def load(config):
    splits, norms = loading.load_data(config)
    train_sets = [splits["train"][m] for m in config.data.modalities]
    from jaxreid.data import sampler

    index = sampler.index_identities([s.person_ids for s in train_sets])
    return splits, norms, train_sets, index


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100, help="Steps between embedding checks.")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--perturbation", default="devices", choices=PERTURBATIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gradients",
        action="store_true",
        help="Only the one-step gain: gradients at the initial parameters and "
        "one ulp from them, per leaf (no training).",
    )
    args = parser.parse_args()
    recipes = args.recipes.split(",")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        parser.error(f"--recipes: unknown {unknown}; expected some of {','.join(RECIPES)}")
    if args.steps < 1 or args.every < 1:
        parser.error(f"--steps and --every must be >= 1, got {args.steps} and {args.every}")
    configs = {r: recipe_config(r) for r in recipes}
    for config in configs.values():
        config.seed = args.seed
    print(
        f"{platform.node()} | {platform.processor() or platform.machine()} | "
        f"{jax.device_count()} x {jax.devices()[0].device_kind} | jax {jax.__version__} | "
        f"perturbation {args.perturbation} | seed {args.seed} | {args.steps} steps",
        flush=True,
    )
    data = load(next(iter(configs.values())))  # The recipes share the data config.
    marks = [s for s in (1, 10, 30, 100, 300, 1000, 3000, 6000) if s <= args.steps]
    if args.steps not in marks:
        marks.append(args.steps)
    if args.gradients:
        print("\nOne ulp on the initial parameters, first batch: relative change of\n")
        print("| recipe | loss | pooled features | gradients | largest leaves |")
        print("|---|---|---|---|---|")
        for recipe, config in configs.items():
            loss, pooled, grads, leaves = gradient_sensitivity(config, data)
            print(
                f"| {recipe} | {loss:.1e} | {pooled:.1e} | {grads:.1e} | "
                + ", ".join(f"{name} {d:.1e}" for name, d in leaves)
                + " |",
                flush=True,
            )
        return
    rows = []
    for recipe, config in configs.items():
        r = run_pair(config, args.perturbation, args.steps, args.every, data)
        rows.append((recipe, r))
        print(
            f"{recipe}: initial {r['initial']:.2e}; params "
            + " ".join(f"{s}:{r['param'][s - 1]:.2e}" for s in marks)
            + f"; doubling {doubling_steps(r['param']):.1f} steps; largest jump "
            f"x{r['jump'][0]:.3g} at step {r['jump'][1]} ("
            + ", ".join(f"{k} {b:.1e} -> {a:.1e}" for k, b, a in r["jump"][2])
            + f"); val mAP {r['val_map'][0]:.2f} / "
            f"{r['val_map'][1]:.2f}; {r['train_sec']:.0f} s\n  first steps: "
            + " ".join(f"{d:.1e}" for d in r["param"][:30])
            + "\n  loss: "
            + " ".join(f"{d:.1e}" for d in r["loss"][:30]),
            flush=True,
        )
    print("\nRelative L2 distance between the two runs of the parameters at step t:\n")
    print(
        "| recipe | "
        + " | ".join(f"t={s}" for s in marks)
        + " | doubling (steps) | largest 1-step growth, at step |"
    )
    print("|---" * (len(marks) + 3) + "|")
    for recipe, r in rows:
        print(
            f"| {recipe} | "
            + " | ".join(f"{r['param'][s - 1]:.1e}" for s in marks)
            + f" | {doubling_steps(r['param']):.1f} | x{r['jump'][0]:.3g} at {r['jump'][1]} |"
        )
    embed_marks = sorted(rows[0][1]["embed"])
    print(
        "\nRelative L2 distance of the embeddings of 64 fixed validation images, and of the "
        f"loss (median over steps 1-{args.steps // 10} and over the last {args.steps // 10}):\n"
    )
    print(
        "| recipe | "
        + " | ".join(f"emb t={s}" for s in embed_marks)
        + " | loss early | loss late | val mAP ref | val mAP other | |diff| |"
    )
    print("|---" * (len(embed_marks) + 6) + "|")
    tenth = max(1, args.steps // 10)
    for recipe, r in rows:
        a, b = r["val_map"]
        print(
            f"| {recipe} | "
            + " | ".join(f"{r['embed'][s]:.1e}" for s in embed_marks)
            + f" | {np.median(r['loss'][:tenth]):.1e} | {np.median(r['loss'][-tenth:]):.1e}"
            f" | {a:.2f} | {b:.2f} | {abs(a - b):.2f} |"
        )


if __name__ == "__main__":
    main()
