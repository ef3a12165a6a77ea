"""The work-directory format: what a training run writes, and the one place that reads it.

A work directory of `jaxreid.training` (one network) holds

    run.json         what inference needs to rebuild the network and its input: 'config'
                     (the full config it was trained with), 'num_classes', 'class_person_ids',
                     'image_shape' [H, W, C], 'normalization' {modality: Normalization};
                     distillation Step II adds 'networks' (which run embeds which modality)
                     and 'targets'
    checkpoints/     the latest Orbax checkpoints of the train state, <step>/ each
    best/            the one checkpoint with the best validation score
    results.json     the test results of the checkpoint in best/ ('step'), with the config
    results.md       the same as a table
    events.out.*     TensorBoard summaries

A distillation work directory holds step1/ and step2/ (each a work directory as above) and the
pair's results.json / results.md. Files are written atomically (a temporary file renamed), so
a killed run never leaves a half-written JSON file.

Re-running with a changed config: `check_compatible` compares a new config with the one in
run.json and refuses every difference outside `RESUMABLE_KEYS` (evaluation, logging and
paths), before anything is written; a run that stopped on a non-finite value ('diverged' in
run.json) may also be resumed with other optimiser settings, recorded under 'recovered'.
A finished run (results.json) is never re-tested by re-running it with other evaluation
settings (`check_retest`): its results stay those of its own settings, and `jaxreid.evaluate`
writes a re-test to files of its own (results-<tag>.json / .md).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from jaxreid import config as config_lib

RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
RESULTS_TABLE = "results.md"
BEST_DIR = "best"
LATEST_DIR = "checkpoints"

# Config keys that may differ between the run in a work directory and a re-run that resumes
# it: they change how the run is evaluated, logged or where data is read from, never what is
# trained. A key ending in '.*' covers its whole group.
RESUMABLE_KEYS = (
    "eval.*",
    "log_every_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "data.data_dir",
    "data.manual_dir",
    "distill.eval_every_steps",
    "distill.early_stopping",
)


class WorkdirError(ValueError):
    """A work directory that cannot be used as asked (changed config, missing files)."""


# --- atomic writes ---------------------------------------------------------------------------


def write_text_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same folder, renamed at the end."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json_atomically(path: str, data: Any) -> None:
    """`data` as indented JSON (NumPy arrays and scalars converted), written atomically."""
    write_text_atomically(path, json.dumps(jsonable(data), indent=2))


def jsonable(x):
    """`x` with NumPy arrays/scalars, tuples and ConfigDicts turned into JSON types."""
    if isinstance(x, ml_collections.ConfigDict):
        x = x.to_dict()
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


# --- run.json --------------------------------------------------------------------------------


def config_from_dict(
    values: Mapping[str, Any], source: str = RUN_FILE
) -> ml_collections.ConfigDict:
    """`default_config()` overridden by a saved config dict (e.g. run.json's 'config'), with
    `jaxreid.config.apply_overrides`.

    Keys the saved dict lacks (written before they existed) keep their defaults; JSON lists
    become tuples, as the schema's sequences are; `model.half_precision` (before 2026-11-29)
    becomes `model.dtype`, `distill.enabled` / `classical.enabled` (before 2026-12-07)
    `method`.

    Raises:
      jaxreid.config.ConfigError (a ValueError): a key the schema does not know or a value
        of the wrong type, naming `source` and the key.
    """
    flat = {}

    def flatten(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                flatten(f"{prefix}{key}.", value)
            else:
                flat[prefix + key] = value

    flatten("", values)
    # Keys of runs written by earlier versions, with what they mean today.
    if "model.half_precision" in flat:
        flat.setdefault("model.dtype", "bfloat16" if flat["model.half_precision"] else "float32")
        del flat["model.half_precision"]
    for key, method in config_lib.schema.REMOVED_KEYS.items():
        if flat.pop(key, False):
            flat.setdefault("method", method)
    try:
        return config_lib.apply_overrides(config_lib.default_config(), flat)
    except config_lib.ConfigError as e:
        raise config_lib.ConfigError(f"{source}: {e}") from None


def has_run(workdir: str) -> bool:
    """Whether `workdir` holds a run (its run.json)."""
    return os.path.exists(os.path.join(os.fspath(workdir), RUN_FILE))


def read_run_info(workdir) -> dict:
    """The contents of `<workdir>/run.json`, with 'config' as a ConfigDict.

    Raises:
      FileNotFoundError: no run.json (not a run directory, or the run has not started).
      ValueError: run.json lacks a required key.
    """
    path = os.path.join(os.fspath(workdir), RUN_FILE)
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist: {os.fspath(workdir)!r} is not a run directory written by "
            "jaxreid.training (or the run has not started yet)"
        ) from None
    missing = [
        k for k in ("config", "num_classes", "image_shape", "normalization") if k not in info
    ]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {missing}; has {sorted(info)}")
    info["config"] = config_from_dict(info["config"], path)
    return info


def write_run_info(workdir: str, info: Mapping[str, Any]) -> None:
    """Writes `<workdir>/run.json` (atomically)."""
    write_json_atomically(os.path.join(workdir, RUN_FILE), info)


# --- results.json ----------------------------------------------------------------------------


def read_results(workdir) -> dict | None:
    """The contents of `<workdir>/results.json`, or None if the run has not finished."""
    try:
        with open(os.path.join(os.fspath(workdir), RESULTS_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def is_finished(workdir) -> bool:
    return os.path.exists(os.path.join(os.fspath(workdir), RESULTS_FILE))


def tested_step(workdir) -> int | None:
    """The step of the checkpoint a finished run tested (results.json 'step'), if any."""
    try:
        results = read_results(workdir)
    except json.JSONDecodeError:
        return None
    step = (results or {}).get("step")
    return int(step) if isinstance(step, int) else None


def write_results(
    workdir: str, results: Mapping[str, Any], table: str, *, name: str = "results"
) -> None:
    """<name>.json (everything) and <name>.md (`table`, Markdown), both written atomically,
    and the table on stdout: the one results writer of every method and of a re-test
    (`jaxreid.evaluate`, name 'results-<tag>').

    Args:
      results: JSON-able after `jsonable` (NumPy values, tuples and ConfigDicts converted).
      table: e.g. `jaxreid.evaluation.experiment.results_markdown(...)`.
    """
    write_json_atomically(os.path.join(workdir, f"{name}.json"), results)
    write_text_atomically(os.path.join(workdir, f"{name}.md"), table + "\n")
    print(table, flush=True)


# --- re-running in a work directory ----------------------------------------------------------


def flatten_config(config: Mapping[str, Any] | ml_collections.ConfigDict) -> dict[str, Any]:
    """{'optim.learning_rate': 0.1, ...} with sequences as lists (JSON-comparable)."""
    flat = {}

    def visit(prefix, node):
        for key, value in node.items():
            if isinstance(value, (Mapping, ml_collections.ConfigDict)):
                visit(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = jsonable(value)

    visit("", config)
    return flat


def _resumable(key: str) -> bool:
    return any(
        key == pattern or (pattern.endswith(".*") and key.startswith(pattern[:-1]))
        for pattern in RESUMABLE_KEYS
    )


def changed_keys(saved: ml_collections.ConfigDict, new: ml_collections.ConfigDict) -> list[str]:
    """The keys whose values differ between `saved` and `new` and change what is trained.

    config.distill.* matter only for config.method='distillation' (Step I's own run ignores them).
    """
    a, b = flatten_config(saved), flatten_config(new)
    distilling = "distillation" in (a.get("method"), b.get("method"))
    return sorted(
        k
        for k in set(a) | set(b)
        if not _resumable(k)
        and (distilling or not k.startswith("distill."))
        and a.get(k, None) != b.get(k, None)
    )


# Keys a re-run may change after the run stopped on a non-finite value (e.g. a lower learning
# rate); the change is recorded in run.json under 'recovered'.
RECOVERY_KEYS = ("optim.*",)


def check_compatible(
    workdir: str, config: ml_collections.ConfigDict, *, refuse_retest: bool = True
) -> dict[str, list]:
    """Refuses to resume the run in `workdir` with a config that trains something else, and
    (unless `refuse_retest` is False) to re-test a finished run with other evaluation
    settings (`check_retest`).

    A run that stopped on a non-finite value (run.json 'diverged') may be resumed with other
    optimiser settings (RECOVERY_KEYS), e.g. a lower learning rate.

    Args:
      refuse_retest: False for a finished run that this re-run only reads and never tests
        again (distillation's Step I teacher).

    Returns:
      {key: [value in the run, new value]} of the recovery changes ({} if none, or if
      `workdir` holds no run).

    Raises:
      WorkdirError: listing every other differing key with both values, and what to do.
    """
    if refuse_retest:
        check_retest(workdir, config)
    if not has_run(workdir):
        return {}
    info = read_run_info(workdir)
    saved = info["config"]
    a, b = flatten_config(saved), flatten_config(config)
    keys = changed_keys(saved, config)
    recovering = "diverged" in info
    recovery = {
        k: [a.get(k), b.get(k)]
        for k in keys
        if recovering and any(k.startswith(p[:-1]) for p in RECOVERY_KEYS)
    }
    refused = [k for k in keys if k not in recovery]
    if not refused:
        return recovery
    lines = [f"  config.{k}: {a.get(k)!r} in the run, {b.get(k)!r} now" for k in refused]
    allowed = ", ".join(RESUMABLE_KEYS + (RECOVERY_KEYS if recovering else ()))
    raise WorkdirError(
        f"{workdir} holds a run trained with a different config; resuming it would mix two "
        "trainings:\n" + "\n".join(lines) + "\nUse a new --workdir, or the run's own values "
        f"(only {allowed} may differ)."
    )


def _flag(key: str, value: Any) -> str:
    """The command-line flag that sets config `key` to `value` (a flattened, JSON value)."""
    text = repr(tuple(value)) if isinstance(value, list) else str(value)
    return shlex.quote(f"--config.{key}={text}")


def check_retest(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Refuses to run a finished run again with other evaluation settings.

    Re-running `jaxreid.main` on a finished run trains nothing and tests the best checkpoint
    again: with other `config.eval.*` values it would overwrite results.json, results.md and
    run.json, and the results the run was trained for would be lost. `jaxreid.evaluate`
    re-tests a run into files of its own instead.

    Compared: the eval settings in results.json's 'config' (what was tested) and `config`'s.

    Raises:
      WorkdirError: naming each changed key with both values and the `jaxreid.evaluate`
        command that tests the run with the new ones (for a distillation run, which that
        command cannot load, `jaxreid.inference.load_distillation_run`).
    """
    try:
        results = read_results(workdir)
    except json.JSONDecodeError:
        return  # A damaged results.json is no finished run: the re-run writes it again.
    if not results or not isinstance(results.get("config"), Mapping):
        return
    source = os.path.join(workdir, RESULTS_FILE)
    tested = flatten_config(config_from_dict(results["config"], source))
    new = flatten_config(config)
    changed = sorted(
        k for k in set(tested) | set(new) if k.startswith("eval.") and tested.get(k) != new.get(k)
    )
    if not changed:
        return
    lines = [f"  config.{k}: {tested.get(k)!r} in the run, {new.get(k)!r} now" for k in changed]
    step2 = "networks" in (_raw_run_info(workdir) or {})  # Distillation's Step II directory.
    if step2 or results.get("method") == "distill":
        pair = os.path.dirname(os.path.abspath(workdir)) if step2 else workdir
        how = (
            "To test the pair F, G with other evaluation settings, load it with "
            f"jaxreid.inference.load_distillation_run({pair!r})."
        )
    else:
        flags = " ".join(_flag(k, new.get(k)) for k in changed)
        how = (
            "To test it with other evaluation settings (results-<tag>.json and .md, written "
            f"beside results.json):\n  python -m jaxreid.evaluate --workdir={shlex.quote(workdir)} "
            f"{flags}"
        )
    raise WorkdirError(
        f"{workdir} holds a finished run, tested with other evaluation settings:\n"
        + "\n".join(lines)
        + "\nRe-running it would overwrite its results.json, results.md and run.json. "
        + how
        + "\nTo train again with these settings, use a new --workdir."
    )


def _raw_run_info(workdir: str) -> dict | None:
    try:
        with open(os.path.join(workdir, RUN_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def mark_diverged(workdir: str, step: int, what: str) -> None:
    """Records in run.json that the run stopped at `step` on a non-finite `what`."""
    path = os.path.join(workdir, RUN_FILE)
    with open(path) as f:
        info = json.load(f)
    info["diverged"] = {"step": step, "what": what}
    write_json_atomically(path, info)


def recovered_history(workdir: str, changes: dict[str, list]) -> list[dict]:
    """run.json's 'recovered' list, plus this re-run's `changes` if the run had diverged."""
    if not has_run(workdir):
        return []
    with open(os.path.join(workdir, RUN_FILE)) as f:
        info = json.load(f)
    history = list(info.get("recovered", []))
    if "diverged" in info:
        history.append({"diverged": info["diverged"], "changes": changes})
    return history


def recovery_record(workdir: str, recovery: dict) -> dict:
    """{'recovered': [...]} for run.json when a diverged run is resumed with other optimiser
    settings (`recovery`, from `check_compatible`; logged as a warning), else {} (or the
    earlier recoveries)."""
    if recovery:
        logging.warning(
            "Resuming the run in %s that stopped on a non-finite value, with %s.",
            workdir,
            ", ".join(f"config.{k}={new!r} (was {old!r})" for k, (old, new) in recovery.items()),
        )
    history = recovered_history(workdir, recovery)
    return {"recovered": history} if history else {}


def check_writable(workdir: str) -> None:
    """Creates `workdir` if needed and checks that files can be written there.

    Raises:
      WorkdirError: naming the folder and the reason (e.g. permission denied).
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".jaxreid_write_test_{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(
            f"Cannot write to the work directory {workdir}: {e.strerror or e}. "
            "Choose a writable --workdir."
        ) from None
