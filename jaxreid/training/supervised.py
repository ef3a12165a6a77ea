"""The method 'supervised' (config.method): one network on the training identities of every
modality.

    config -> data (data.loading: ImageSets, normalisation) -> Engine (model, optimiser,
    steps) -> loop (train, validate, checkpoint) -> best checkpoint -> test -> results

`train_and_evaluate(config, workdir)` is the one entry point (jaxreid.methods, and through it
the command line, the experiment runner and the notebooks, call it). Re-running it on the
same work directory resumes the run.
"""

from __future__ import annotations

import copy
import time

import jax
import ml_collections
from absl import logging

from jaxreid import workdir as workdir_lib
from jaxreid.data import loading
from jaxreid.evaluation import experiment as evaluation
from jaxreid.training import checkpoints as checkpoints_lib
from jaxreid.training import loop, preflight, summaries
from jaxreid.training.engine import Engine


def train_batches(config, train_sets, norms, index, start_step: int):
    """This process's share of the P x K batches of steps start_step+1..num_train_steps."""
    from jaxreid.data import pipeline

    return pipeline.train_batches(
        train_sets,
        [norms[s.modality] for s in train_sets],
        index,
        num_identities=config.batch.num_identities,
        images_per_identity=config.batch.images_per_identity,
        layout=config.data.input_layout,
        seed=config.seed,
        start_step=start_step,
        num_steps=config.num_train_steps,
        random_flip=config.data.random_flip,
        pad_crop=config.data.pad_crop,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        sampling=config.batch.sampler,
        **loading.augmentation(config),
    )


def resolved_optim(optim, train_sets, config):
    """`optim` with steps_per_epoch set from the data when the 'agw' schedule leaves it 0:
    an epoch is one pass over the larger modality's images (AGW's sampler, Ye et al. 2021)."""
    if optim.schedule != "agw" or optim.steps_per_epoch:
        return optim
    per_modality = config.batch.num_identities * config.batch.images_per_identity
    per_modality //= len(config.data.modalities)
    optim = copy.deepcopy(optim)
    optim.steps_per_epoch = max(1, max(len(s) for s in train_sets) // per_modality)
    return optim


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains, validates and tests one network; resumes from `workdir` if it holds the run.

    Writes to `workdir` (format: jaxreid.workdir): run.json, checkpoints/ (latest), best/
    (best validation mAP), TensorBoard summaries, results.json and results.md (the test
    results of the best checkpoint).

    Returns:
      The contents of results.json.

    Raises:
      jaxreid.config.ConfigError, jaxreid.workdir.WorkdirError: before anything is written.
      loop.NonFiniteError, progress.Preempted: see `jaxreid.training.loop.run`.
    """
    from jaxreid.data import sampler

    start = preflight.check(config, workdir, "supervised")
    workdir = start.workdir
    with preflight.cleanup_on_failure(start):
        splits, norms = loading.load_data(config)
        preflight.check_data(config, splits)
    train_sets = [splits["train"][m] for m in config.data.modalities]
    index = sampler.index_identities([s.person_ids for s in train_sets])
    engine = Engine(
        config,
        index.num_classes,
        loading.image_shape(config),
        optim=resolved_optim(config.optim, train_sets, config),
    )
    if jax.process_index() == 0:
        # What inference needs to rebuild the network and its input (jaxreid.inference).
        workdir_lib.write_run_info(
            workdir,
            {
                "config": config,
                "num_classes": index.num_classes,
                "class_person_ids": index.labels,
                "image_shape": engine.image_shape,
                "normalization": {m: n.to_dict() for m, n in norms.items()},
                **workdir_lib.recovery_record(workdir, start.recovery),
            },
        )
    logging.info(
        "Training %s on %s %s: %d identities, %s images; %d devices on %d processes.",
        config.model.backbone,
        config.data.name,
        "+".join(config.data.modalities),
        index.num_classes,
        {s.modality: len(s) for s in train_sets},
        jax.device_count(),
        jax.process_count(),
    )

    writer = summaries.open_writer(workdir, config)
    checkpoints = checkpoints_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
    try:
        state = engine.init_state()
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            state = restored
            logging.info("Resumed from step %d in %s.", int(state.step), workdir)

        def validate(state):
            embed = engine.embedder({m: state.variables for m in norms}, norms)
            pairs = evaluation.evaluate_pairs(
                embed, splits["val"], config.eval, config.eval.val_protocol
            )
            evaluation.warn_if_collapsed(pairs, f"Step {int(state.step)} validation")
            score = evaluation.validation_score(config, pairs)
            return {"val_mAP": score}, {"val/mAP": score, **evaluation.pair_scalars("val", pairs)}

        phase = loop.Phase(
            name="Training",
            num_steps=engine.num_steps,
            log_every=config.log_every_steps,
            eval_every=config.eval_every_steps,
            checkpoint_every=config.checkpoint_every_steps,
            images_per_step=config.batch.num_identities * config.batch.images_per_identity,
        )
        state = loop.run(
            phase,
            workdir=workdir,
            state=state,
            step_fn=engine.train_step,
            batches=train_batches(config, train_sets, norms, index, int(state.step)),
            mesh=engine.mesh,
            checkpoints=checkpoints,
            writer=writer,
            validate=validate,
        )

        tick = time.time()
        state, final_step, best_step = checkpoints.state_to_test(state)
        embed = engine.embedder({m: state.variables for m in norms}, norms)
        results = {
            "config": config.to_dict(),
            "final_step": final_step,
            "step": int(state.step),  # Of the tested (best) checkpoint.
            "best_step": best_step,
            "num_classes": index.num_classes,
            "normalization": {m: n.to_dict() for m, n in norms.items()},
            "test": evaluation.test(embed, splits["test"], config.eval, splits.get("query")),
        }
        results["test_time_sec"] = time.time() - tick
        if jax.process_index() == 0:
            title = (
                f"{config.data.name}, {config.model.backbone}, {config.loss.name}: test set, "
                f"checkpoint of step {results['step']} (best validation mAP)"
            )
            table = evaluation.results_markdown(config, results["test"], title)
            workdir_lib.write_results(workdir, results, table)
    finally:
        writer.flush()
        checkpoints.close()
    return results
