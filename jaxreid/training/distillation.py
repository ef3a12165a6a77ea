"""Cross-modal distillation network (Hafner 2018, §3.3 and Algorithm 1; the journal version in
the thesis's appendix D, §3.3): `train_and_evaluate(config, workdir)` runs both steps.

Step I   F = the supervised trainer on the source modality alone (single-modal network),
         best checkpoint by validation mAP -> <workdir>/step1 (or a finished Step I workdir
         given as config.distill.teacher_workdir).
Step II  G starts as a copy of F (config.distill.copy_weights) and is frozen from a mid-level
         layer up to the embedding (config.distill.freeze_from; jaxreid.training.freezing).
         The rest of G is trained on target-modality P x K batches to minimise the MSE
         between G(x_target) and F's embedding of the paired source frame, or the identity's
         mean (jaxreid.training.distillation_targets). The checkpoint with the lowest
         validation loss is kept -> <workdir>/step2.
Inference: source-modality images are embedded by F, target-modality images by G, and tested
         with config.eval.test_protocol -> <workdir>/results.json, results.md.

Choices fixed here (the papers leave them open; see also config.distill):
- The student sees its target images with the training augmentation of config.data (random
  flip, pad-and-crop), as the author's retrainer.py (random crop + flip) does; the target
  stays the embedding of the un-augmented source frame.
- Frozen parameters get exactly zero updates (optax.multi_transform with set_to_zero: no
  momentum, no weight decay) and are passed through the step unchanged, so they stay
  bit-identical; no gradient is computed for them (stop_gradient).
- config.distill.frozen_bn = 'fixed' (default) runs the frozen layers' BatchNorm in inference
  mode with F's running statistics, and the frozen head's dropout off, so that the frozen
  part of G computes exactly F's function during Step II and at test time (the paper's
  intent: "retains the high-level mapping from the first network"). 'update' keeps them in
  training mode (the author's code, which only sets requires_grad=False).
- The validation loss is the per-sample squared error (Eq. 6) over every validation target
  image with a target embedding; the reduction does not change which checkpoint is best.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from jaxreid import config as config_lib
from jaxreid import mixed_precision
from jaxreid import workdir as workdir_lib
from jaxreid.config import choices
from jaxreid.evaluation import experiment as evaluation
from jaxreid.training import checkpoints as checkpoints_lib
from jaxreid.training import distillation_targets as targets_lib
from jaxreid.data import loading
from jaxreid.training import freezing, loop, optimizers, preflight, steps, summaries, supervised
from jaxreid.training.engine import Engine

FROZEN_BN = choices.DISTILL_FROZEN_BN
EARLY_STOPPING = choices.DISTILL_EARLY_STOPPING


def modalities(config: ml_collections.ConfigDict) -> tuple[str, str]:
    """(source modality, target modality) of a validated distillation config."""
    source = config.distill.source_modality
    return source, next(m for m in config.data.modalities if m != source)


def step1_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config of Step I: the single-modal network F on the source modality."""
    step1 = copy.deepcopy(config)
    step1.data.modalities = (config.distill.source_modality,)
    step1.eval.val_pairs = ()
    step1.eval.test_protocol = "pairs"  # 'sysu' / 'regdb' need both modalities.
    step1.method = "supervised"
    return step1


def step2_config(
    config: ml_collections.ConfigDict, teacher_config: ml_collections.ConfigDict
) -> ml_collections.ConfigDict:
    """The config of Step II: F's network and input (from Step I's config), Step II's
    optimiser and step count."""
    step2 = copy.deepcopy(config)
    for group, keys in (
        ("model", None),
        ("loss", ("name",)),
        ("data", ("image_size", "input_layout", "normalization", "center_depth")),
    ):
        for key in keys or teacher_config[group].keys():
            if key not in teacher_config[group] or key not in step2[group]:
                continue  # A key of another schema version.
            value, mine = teacher_config[group][key], step2[group][key]
            if _plain(value) != _plain(mine):
                logging.warning(
                    "Step II uses Step I's config.%s.%s=%r (this config says %r).",
                    group,
                    key,
                    value,
                    mine,
                )
            step2[group][key] = tuple(value) if isinstance(value, list) else value
    # Every key of the optimiser schema, the defaults where config.distill.optim has none
    # (it lacks e.g. the parameter-group and epoch keys of config.optim).
    step2.optim = config_lib.default_config().optim
    for key, value in config.distill.optim.items():
        step2.optim[key] = value
    step2.num_train_steps = config.distill.num_train_steps
    return step2


def _plain(x):
    if isinstance(x, ml_collections.ConfigDict):
        return x.to_dict()
    return list(x) if isinstance(x, (list, tuple)) else x


@dataclasses.dataclass
class Teacher:
    """F, restored from a finished Step I workdir.

    Attributes:
      workdir: the Step I workdir.
      config: Step I's config (from run.json).
      num_classes: classifier size of F (and G).
      class_person_ids: [C] person id of each class.
      image_shape: (H, W, C) network input.
      normalization: {modality: Normalization} of Step I.
      variables: F's variables ({'params', **model_state}) at `step`.
      step: the checkpoint Step I tested (best validation mAP).
      results: Step I's results.json.
    """

    workdir: str
    config: ml_collections.ConfigDict
    num_classes: int
    class_person_ids: list
    image_shape: tuple
    normalization: dict
    variables: dict
    step: int
    results: dict


def load_teacher(workdir: str) -> Teacher:
    """Restores F from a finished Step I workdir (run.json, results.json, the tested checkpoint).

    Raises:
      FileNotFoundError: Step I has not finished there.
    """
    results = workdir_lib.read_results(workdir)
    if results is None:
        raise FileNotFoundError(
            f"config.distill.teacher_workdir={workdir!r} holds no finished Step I run "
            "(results.json missing); train it with jaxreid.main first."
        )
    # The checkpoint Step I tested: its best/ one, or, when no validation score was finite
    # (nothing kept in best/, e.g. on the builders' test trees), its final one.
    run = checkpoints_lib.load_trained_run(workdir, int(results["step"]))
    return Teacher(
        workdir=workdir,
        config=run.config,
        num_classes=run.num_classes,
        class_person_ids=run.info["class_person_ids"],
        image_shape=run.image_shape,
        normalization=run.normalization,
        variables=run.variables,
        step=run.step,
        results=results,
    )


def init_student(engine: Engine, teacher: Teacher, *, copy_weights: bool):
    """G's initial (params, model_state): F's, or G's own initialisation.

    The own initialisation uses the key fold_in(key(config.seed), 1), so that G does not
    start from F's Step I initialisation (with config.model.pretrained set it is the
    pretrained network, as in the author's code, whose `--dont-load-weights` G starts from
    ImageNet weights).
    """
    if copy_weights:
        variables = dict(teacher.variables)
    else:
        own = engine.init_state(key=jax.random.fold_in(jax.random.key(engine.config.seed), 1))
        variables = own.variables
    params = variables.pop("params")
    return params, variables


def _step2(config, teacher: Teacher, start: preflight.Start, cfg) -> dict:
    """Trains and tests G (Step II) in `start.workdir` with Step II's config `cfg`; resumes.

    Args:
      start: the checked Step II work directory, with the optimiser changes with which a
        diverged Step II is resumed (`start.recovery`).
    """
    workdir = start.workdir
    source, target = modalities(config)
    d = config.distill
    with preflight.cleanup_on_failure(start):
        splits, norms = loading.load_data(cfg)
        preflight.check_data(cfg, splits)  # Step II's batches: G's target-modality images.
    norms[source] = teacher.normalization[source]  # F's own input statistics.
    image_shape = loading.image_shape(cfg)
    if tuple(image_shape) != tuple(teacher.image_shape):
        raise ValueError(
            f"Step II input {image_shape} differs from Step I's {teacher.image_shape}."
        )
    engine = Engine(cfg, teacher.num_classes, image_shape)

    # F's embeddings of the source images (computed once: F is frozen).
    f_train = engine.embed(teacher.variables, splits["train"][source], norms[source])
    f_val = engine.embed(teacher.variables, splits["val"][source], norms[source])
    kind = targets_lib.resolve_targets(d.targets, splits["train"][target], splits["train"][source])
    keep, targets = targets_lib.distillation_targets(
        kind, splits["train"][target], splits["train"][source], f_train
    )
    val_keep, val_targets = targets_lib.distillation_targets(
        kind, splits["val"][target], splits["val"][source], f_val
    )
    train_set = splits["train"][target].select(keep)
    logging.info(
        "Step II: %s -> %s, %s targets for %d of %d %s training images (%d identities); "
        "freeze_from=%s, frozen_bn=%s, copy_weights=%s.",
        source,
        target,
        kind,
        len(keep),
        len(splits["train"][target]),
        target,
        len(np.unique(train_set.person_ids)),
        d.freeze_from,
        d.frozen_bn,
        d.copy_weights,
    )

    params, model_state = init_student(engine, teacher, copy_weights=d.copy_weights)
    frozen_from = freezing.freeze_index(engine.model, d.freeze_from, cfg.model.backbone)
    frozen = freezing.frozen_mask(engine.model, params, frozen_from, d.freeze_from)
    tx = mixed_precision.with_loss_scaling(
        optimizers.masked_optimizer(cfg.optim, engine.schedule, frozen), cfg.model.dtype
    )
    state = engine.state_from_variables(params, model_state, tx)
    step_fn = engine.compile_step(
        functools.partial(
            steps.distill_step,
            model=engine.model,
            tx=tx,
            schedule=engine.schedule,
            frozen=frozen,
            frozen_from=frozen_from,
            frozen_bn=d.frozen_bn,
            reduction=d.loss_reduction,
            dropout_key=engine.dropout_key,
        )
    )
    sizes = [
        (int(np.prod(p.shape)), f) for p, f in zip(jax.tree.leaves(params), jax.tree.leaves(frozen))
    ]
    logging.info(
        "Step II: %d of %d parameters frozen.",
        sum(n for n, f in sizes if f),
        sum(n for n, _ in sizes),
    )
    if jax.process_index() == 0:
        workdir_lib.write_run_info(
            workdir,
            {
                "config": cfg,
                "num_classes": teacher.num_classes,
                "class_person_ids": teacher.class_person_ids,
                "image_shape": image_shape,
                "normalization": {m: n.to_dict() for m, n in norms.items()},
                # Which network embeds which modality at inference (Hafner 2018 §3.3.3).
                "networks": {
                    source: {
                        "workdir": teacher.workdir,
                        "checkpoint": "best",
                        "step": teacher.step,
                    },
                    target: {"workdir": workdir, "checkpoint": "best"},
                },
                "targets": kind,
                **workdir_lib.recovery_record(workdir, start.recovery),
            },
        )

    def validate(state):
        """G's MSE to the validation targets, and the F/G cross-modal validation mAP."""
        g_val = engine.embed(state.variables, splits["val"][target], norms[target])
        val_loss = float(np.mean(np.sum((g_val[val_keep] - val_targets) ** 2, axis=1)))
        embed = engine.embedder({source: teacher.variables, target: state.variables}, norms)
        pairs = evaluation.evaluate_pairs(embed, splits["val"], cfg.eval, cfg.eval.val_protocol)
        evaluation.warn_if_collapsed(pairs, f"Step II step {int(state.step)} validation")
        val_map = evaluation.validation_score(cfg, pairs)
        metrics = {"val_loss": val_loss, "val_mAP": val_map}
        return metrics, {"val/loss": val_loss, "val/mAP": val_map}

    by_loss = d.early_stopping == "val_loss"
    writer = summaries.open_writer(workdir, cfg)
    checkpoints = checkpoints_lib.Checkpoints(
        workdir,
        keep=cfg.keep_checkpoints,
        best_metric=d.early_stopping,
        best_mode="min" if by_loss else "max",
    )
    try:
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            state = restored
            logging.info("Resumed Step II from step %d in %s.", int(state.step), workdir)
        phase = loop.Phase(
            name="Step II",
            num_steps=cfg.num_train_steps,
            log_every=cfg.log_every_steps,
            eval_every=d.eval_every_steps,
            checkpoint_every=cfg.checkpoint_every_steps,
            images_per_step=cfg.batch.num_identities * cfg.batch.images_per_identity,
            learning_rate_key="config.distill.optim.learning_rate",
        )
        batches = targets_lib.step2_batches(
            train_set,
            targets,
            norms[target],
            cfg,
            start_step=int(state.step),
            num_steps=cfg.num_train_steps,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            augmentation=loading.augmentation(cfg),
        )
        state = loop.run(
            phase,
            workdir=workdir,
            state=state,
            step_fn=step_fn,
            batches=({"image": b["image"], "teacher": b["teacher"]} for b in batches),
            mesh=engine.mesh,
            checkpoints=checkpoints,
            writer=writer,
            validate=validate,
        )

        tick = time.time()
        state, final_step, best_step = checkpoints.state_to_test(state)
        val, _ = validate(state)
        embed = engine.embedder({source: teacher.variables, target: state.variables}, norms)
        results = {
            "config": config.to_dict(),
            "method": "distill",
            "source_modality": source,
            "target_modality": target,
            "targets": kind,
            "final_step": final_step,
            "step": int(state.step),  # Of the tested (best) checkpoint.
            "best_step": best_step,
            "early_stopping": d.early_stopping,
            "val_loss": val["val_loss"],
            "val_mAP": val["val_mAP"],
            "num_classes": teacher.num_classes,
            "normalization": {m: n.to_dict() for m, n in norms.items()},
            "step1": {
                "workdir": teacher.workdir,
                "step": teacher.step,
                "test": teacher.results.get("test"),
            },
            "test": evaluation.test(embed, splits["test"], cfg.eval, splits.get("query")),
        }
        results["test_time_sec"] = time.time() - tick
        if jax.process_index() == 0:
            write_results(workdir, results, config)
    finally:
        writer.flush()
        checkpoints.close()
    return results


def write_results(workdir: str, results: dict, config: ml_collections.ConfigDict) -> None:
    """results.json and results.md of the pair F, G (written atomically; jaxreid.workdir)."""
    embedding = config.model.embedding_size or "classification layer"
    title = (
        f"{config.data.name}, {config.model.backbone}, {config.loss.name}, cross-modal "
        f"distillation {results['source_modality']} -> {results['target_modality']} "
        f"(embedding {embedding}): test set, Step II checkpoint of step {results['step']} "
        f"(best {results['early_stopping'].replace('_', ' ')})"
    )
    table = evaluation.results_markdown(config, results["test"], title)
    workdir_lib.write_results(workdir, results, table)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runs Step I (unless config.distill.teacher_workdir is given) and Step II; resumes.

    Writes <workdir>/step1 (Step I, as the supervised trainer), <workdir>/step2 (G's
    checkpoints, summaries, results) and <workdir>/results.json / results.md (the test
    results of the pair F, G for all four query/gallery modality pairs).

    Returns:
      The contents of results.json.
    """
    workdir = preflight.check(config, workdir, "distillation").workdir
    source, _ = modalities(config)
    step1_dir = os.path.join(workdir, "step1")
    step2_dir = os.path.join(workdir, "step2")
    teacher_dir = (
        os.path.abspath(config.distill.teacher_workdir)
        if config.distill.teacher_workdir
        else step1_dir
    )
    # Both steps' work directories are checked before Step I trains.
    if not config.distill.teacher_workdir:
        # A finished Step I is only read (the teacher), never tested again.
        workdir_lib.check_compatible(step1_dir, step1_config(config), refuse_retest=False)
    if workdir_lib.has_run(step2_dir) and workdir_lib.has_run(teacher_dir):
        teacher_config = workdir_lib.read_run_info(teacher_dir)["config"]
        workdir_lib.check_compatible(step2_dir, step2_config(config, teacher_config))

    if not config.distill.teacher_workdir and not workdir_lib.is_finished(step1_dir):
        logging.info("Step I: single-modal network on %s in %s.", source, step1_dir)
        supervised.train_and_evaluate(step1_config(config), step1_dir)  # Step I: F.
    teacher = load_teacher(teacher_dir)
    if list(teacher.config.data.modalities) != [source]:
        raise ValueError(
            f"The Step I run in {teacher_dir} was trained on {list(teacher.config.data.modalities)}"
            f"; config.distill.source_modality={source!r} needs a single-modal {source} network."
        )
    results = workdir_lib.read_results(step2_dir)
    if results is None:
        cfg = step2_config(config, teacher.config)
        recovery = workdir_lib.check_compatible(step2_dir, cfg)
        created = not os.path.exists(step2_dir)
        workdir_lib.check_writable(step2_dir)
        results = _step2(config, teacher, preflight.Start(step2_dir, recovery, created), cfg)
    if jax.process_index() == 0:
        write_results(workdir, results, config)
    multihost_utils.sync_global_devices("jaxreid.distill done")
    return results
