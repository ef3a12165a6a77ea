"""Evaluate a trained run again, without touching its training files.

    python -m jaxreid.evaluate --workdir=W [--checkpoint=best|latest|STEP] [--config.eval.*=...]

loads the run in W (its run.json and a checkpoint), tests it with the run's evaluation
settings overridden by the `--config.eval.*` flags (another metric, protocol, feature, flip
test, re-ranking, ...), and writes `results-<tag>.json` / `results-<tag>.md` beside the
training results (results.json and results.md are never written) and the test metrics to
TensorBoard under W/eval/<tag>. The tag names the checkpoint and every changed setting, e.g.
`results-best-metric_cosine-rerank.json`.
"""

from __future__ import annotations

import os
import sys

from jaxreid import config as config_lib
from jaxreid import workdir as workdir_lib


def evaluation_tag(checkpoint: str | int, overrides: dict[str, str]) -> str:
    """'best' / 'latest' / 'step<N>', then each changed eval key and value (file-name safe)."""
    parts = [checkpoint if isinstance(checkpoint, str) else f"step{checkpoint}"]
    for key, value in sorted(overrides.items()):
        name = key.removeprefix("eval.")
        value = str(value)
        if value.lower() in ("true", "1"):
            parts.append(name)
        else:
            safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in value)
            parts.append(f"{name}_{safe}")
    return "-".join(parts)


def evaluate_run(workdir: str, checkpoint: str | int = "best", overrides=None) -> dict:
    """Tests the checkpoint of a run with its config's evaluation settings overridden.

    Args:
      workdir: a run directory of the supervised trainer (run.json, best/, checkpoints/).
      checkpoint: 'best' (the checkpoint the run tested), 'latest', or a step number.
      overrides: {'eval.<key>': value} (strings are parsed as --config flags are).

    Returns:
      The written results: 'test', 'step', 'checkpoint', 'eval' (the settings used), 'tag'.

    Raises:
      jaxreid.config.ConfigError: an override outside config.eval, or a wrong value.
      FileNotFoundError: no run or no such checkpoint in `workdir`.
    """
    overrides = dict(overrides or {})
    outside = sorted(k for k in overrides if not k.startswith("eval."))
    if outside:
        raise config_lib.ConfigError(
            f"jaxreid.evaluate changes only config.eval.*; got {', '.join(outside)} (what is "
            "trained cannot change after training)."
        )
    workdir = os.path.abspath(workdir)
    info = workdir_lib.read_run_info(workdir)
    if "networks" in info:
        raise config_lib.ConfigError(
            f"{workdir} is distillation Step II; evaluate the pair with jaxreid.inference "
            "(load_distillation_run)."
        )
    # Checked before anything is restored: the run's config with the new evaluation settings.
    config = config_lib.apply_overrides(info["config"], overrides)
    config.model.pretrained = ""  # The checkpoint holds the weights.
    config_lib.validate(config)

    import jax

    from jaxreid.data import sources
    from jaxreid.evaluation import experiment
    from jaxreid.training import checkpoints, summaries
    from jaxreid.training.engine import Engine

    engine = Engine(config, info["num_classes"], info["image_shape"])
    run = checkpoints.load_trained_run(workdir, checkpoint, engine.mesh.replicated)
    step, modalities = run.step, tuple(config.data.modalities)
    sets = {m: sources.load_image_set(config.data, m, config.data.test_split) for m in modalities}
    query_sets = (
        {m: sources.load_image_set(config.data, m, config.data.query_split) for m in modalities}
        if config.data.query_split
        else None
    )
    embed = engine.embedder({m: run.variables for m in modalities}, run.normalization)
    tag = evaluation_tag(checkpoint, overrides)
    results = {
        "tag": tag,
        "checkpoint": checkpoint,
        "step": step,
        "eval": config.eval.to_dict(),
        "test": experiment.test(embed, sets, config.eval, query_sets),
    }
    if jax.process_index() == 0:
        title = (
            f"{config.data.name}, {config.model.backbone}: test set, checkpoint of step {step} "
            f"({checkpoint})"
        )
        table = experiment.results_markdown(config, results["test"], title)
        workdir_lib.write_results(workdir, results, table, name=f"results-{tag}")
        writer = summaries.open_writer(os.path.join(workdir, "eval", tag), config)
        writer.write_scalars(step, experiment.pair_scalars("test", results["test"]))
        writer.flush()
    return results


def main(argv: list[str]) -> int:
    import argparse

    overrides, rest = config_lib.overrides_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m jaxreid.evaluate", description=__doc__)
    parser.add_argument("--workdir", required=True, help="the run directory")
    parser.add_argument(
        "--checkpoint", default="best", help="'best' (default), 'latest' or a step number"
    )
    args = parser.parse_args(rest[1:])
    checkpoint = int(args.checkpoint) if args.checkpoint.isdigit() else args.checkpoint
    from jaxreid import log_filters

    log_filters.install()
    try:
        evaluate_run(args.workdir, checkpoint, overrides)
    except (config_lib.ConfigError, FileNotFoundError, ValueError) as e:
        sys.stderr.write(f"Error: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv))
