"""Training and evaluation loop: the one entry point `train_and_evaluate(config, workdir)`.

Data parallel over every device of every process: the train step is `jax.jit`-compiled with
the batch sharded over a 1-D mesh axis 'data' and the state replicated, so XLA computes
global-batch BatchNorm statistics, batch-hard triplets over the global batch, and the
gradient mean across devices by itself (no pmap, no hand-written collectives).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxreid import config as config_lib
from jaxreid import evaluation, losses, models
from jaxreid.data import pipeline, preprocessing, sampler, sources
from jaxreid.data.image_set import ImageSet


@flax.struct.dataclass
class TrainState:
    """Everything a train step changes.

    Attributes:
      step: [] int32.
      params: the trained parameters.
      model_state: every other mutable collection of the model ('batch_stats', and the
        distance layer's 'centers'), updated by the forward pass rather than by gradients.
      opt_state: the optax state.
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any


# --- optimisation ----------------------------------------------------------------------------


def learning_rate_schedule(optim: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warm-up, then constant, cosine decay to 0, or steps at fractions of training."""
    base, warmup = optim.learning_rate, min(optim.warmup_steps, max(num_steps - 1, 0))
    rest = max(num_steps - warmup, 1)
    if optim.schedule == "constant":
        main = optax.constant_schedule(base)
    elif optim.schedule == "cosine":
        main = optax.cosine_decay_schedule(base, rest)
    elif optim.schedule == "step":
        main = optax.piecewise_constant_schedule(
            base, {int(f * num_steps) - warmup: optim.step_factor for f in optim.step_boundaries}
        )
    else:
        raise ValueError(
            f"config.optim.schedule={optim.schedule!r}; expected 'constant', 'cosine' or 'step'."
        )
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, base, warmup), main], [warmup])


def create_optimizer(
    optim: ml_collections.ConfigDict, schedule: optax.Schedule
) -> optax.GradientTransformation:
    """SGD with Nesterov momentum or Adam (Hafner 2018, §4.3.2), with coupled weight decay.

    Weight decay is added to the gradient of every kernel (ndim > 1) before the optimiser, as
    torch.optim applies `weight_decay`; BatchNorm scales and biases are not decayed.
    """
    if optim.name == "sgd":
        opt = optax.sgd(schedule, momentum=optim.momentum, nesterov=True)
    elif optim.name == "momentum":
        opt = optax.sgd(schedule, momentum=optim.momentum)
    elif optim.name == "adam":
        opt = optax.adam(schedule)
    else:
        raise ValueError(f"config.optim.name={optim.name!r}; expected 'sgd', 'momentum' or 'adam'.")
    chain = []
    if optim.grad_clip_norm:
        chain.append(optax.clip_by_global_norm(optim.grad_clip_norm))
    if optim.weight_decay:
        kernels = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
        chain.append(optax.add_decayed_weights(optim.weight_decay, mask=kernels))
    chain.append(opt)
    return optax.chain(*chain)


# --- losses ----------------------------------------------------------------------------------

LOSSES = ("softmax", "triplet", "softmax+triplet")


def compute_loss(
    loss_config: ml_collections.ConfigDict,
    embedding: jax.Array,
    intermediates: dict[str, jax.Array],
    labels: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training loss named by `config.loss.name` and metrics to log.

    Args:
      embedding: [B, D] float32, the network's embedding.
      intermediates: the model's named outputs; 'logits' [B, C] for softmax, and the
        features named by `loss_config.triplet_feature` if set.
      labels: [B] int32 class labels.
    """
    parts = loss_config.name.split("+")
    metrics, total = {}, 0.0
    if "softmax" in parts:
        logits = intermediates["logits"].astype(jnp.float32)
        ce = losses.softmax_cross_entropy(logits, labels)
        metrics["softmax_loss"] = ce
        metrics["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == labels)
        total += ce
    if "triplet" in parts:
        features = models.select_feature(
            embedding, intermediates, loss_config.triplet_feature, "config.loss.triplet_feature"
        )
        trip = losses.batch_hard_triplet(
            features.astype(jnp.float32),
            labels,
            margin=loss_config.triplet_margin,
            soft_margin=loss_config.soft_margin,
        )
        metrics["triplet_loss"] = trip
        total += trip
    metrics["loss"] = total
    return total, metrics


# --- steps -----------------------------------------------------------------------------------


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    model: flax.linen.Module,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    loss_config: ml_collections.ConfigDict,
    dropout_key: jax.Array,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One SGD step on the global batch (image [B, H, W, C] float32, label [B] int32)."""
    key = jax.random.fold_in(dropout_key, state.step)

    def loss_fn(params):
        variables = {"params": params, **state.model_state}
        (embedding, intermediates), new_model_state = model.apply(
            variables,
            batch["image"],
            train=True,
            labels=batch["label"],
            mutable=list(state.model_state.keys()),
            rngs={"dropout": key},
        )
        loss, metrics = compute_loss(loss_config, embedding, intermediates, batch["label"])
        return loss, (new_model_state, metrics)

    grads, (new_model_state, metrics) = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["learning_rate"] = schedule(state.step)
    metrics["grad_norm"] = optax.tree.norm(grads)
    new_state = TrainState(
        step=state.step + 1, params=params, model_state=new_model_state, opt_state=opt_state
    )
    return new_state, metrics


def embed_step(
    state: TrainState, images: jax.Array, *, model: flax.linen.Module, feature: str = ""
) -> jax.Array:
    """[B, H, W, C] -> [B, D] float32 embeddings in inference mode.

    Args:
      feature: '' for the model's embedding, or the name of an intermediate output.
    """
    embedding, intermediates = model.apply(
        {"params": state.params, **state.model_state}, images, train=False
    )
    return models.select_feature(embedding, intermediates, feature).astype(jnp.float32)


# --- the run ---------------------------------------------------------------------------------


class Run:
    """The compiled functions and shardings of one run (built once, used by every phase)."""

    def __init__(
        self, config: ml_collections.ConfigDict, num_classes: int, image_shape, devices=None
    ):
        """Args: devices to shard over, default every device of every process."""
        self.config = config
        devices = jax.devices() if devices is None else list(devices)
        # Auto axis types: the default Explicit mesh rejects some batch contractions.
        self.mesh = jax.make_mesh(
            (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
        )
        self.data_sharding = NamedSharding(self.mesh, P("data"))
        self.replicated = NamedSharding(self.mesh, P())
        self.model = models.model_from_config(config, num_classes)
        self.num_steps = config.num_train_steps
        self.schedule = learning_rate_schedule(config.optim, self.num_steps)
        self.tx = create_optimizer(config.optim, self.schedule)
        self.image_shape = tuple(image_shape)
        root = jax.random.key(config.seed)
        self.init_key, self.dropout_key = jax.random.split(root)
        self.train_step = jax.jit(
            functools.partial(
                train_step,
                model=self.model,
                tx=self.tx,
                schedule=self.schedule,
                loss_config=config.loss,
                dropout_key=self.dropout_key,
            ),
            in_shardings=(self.replicated, self.data_sharding),
            out_shardings=(self.replicated, self.replicated),
            donate_argnums=0,
        )
        self.embed_step = jax.jit(
            functools.partial(embed_step, model=self.model, feature=config.eval.feature),
            in_shardings=(self.replicated, self.data_sharding),
            out_shardings=self.data_sharding,
        )

    def init_state(self) -> TrainState:
        """The initial state, created directly with replicated sharding."""

        def init(key):
            dummy = jnp.zeros((1, *self.image_shape), jnp.float32)
            variables = self.model.init({"params": key, "dropout": key}, dummy, train=False)
            variables = flax.core.unfreeze(variables)
            params = variables.pop("params")
            return TrainState(
                step=jnp.zeros((), jnp.int32),
                params=params,
                model_state=variables,
                opt_state=self.tx.init(params),
            )

        state = jax.jit(init, out_shardings=self.replicated)(self.init_key)
        if self.config.model.pretrained:
            state = self._load_pretrained(state)
        return state

    def _load_pretrained(self, state: TrainState) -> TrainState:
        from jaxreid.models import pretrained  # torch/safetensors are imported only if used.

        variables = pretrained.merge_into(
            {"params": state.params, **state.model_state},
            pretrained.load_torchvision_resnet(
                self.config.model.pretrained,
                self.config.model.backbone,
                in_channels=self.image_shape[-1],
            ),
        )
        variables = dict(variables)
        params = variables.pop("params")
        state = state.replace(params=params, model_state=variables, opt_state=self.tx.init(params))
        return jax.device_put(state, self.replicated)

    def global_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """This host's rows -> arrays sharded over every device of every host."""
        return {
            k: jax.make_array_from_process_local_data(self.data_sharding, v)
            for k, v in local.items()
        }

    def embed(self, state: TrainState, image_set: ImageSet, norm) -> np.ndarray:
        """[N, D] float32 embeddings of every image of `image_set`, in its order, on every host."""
        outputs = []
        for batch in pipeline.eval_batches(
            image_set,
            norm,
            layout=self.config.data.input_layout,
            slot=list(self.config.data.modalities).index(image_set.modality),
            global_batch=self.config.batch.eval_batch_size,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
        ):
            batch = self.global_batch(batch)
            emb = self.embed_step(state, batch["image"])
            emb, mask = multihost_utils.process_allgather((emb, batch["mask"]), tiled=True)
            outputs.append(np.asarray(emb)[np.asarray(mask)])
        return np.concatenate(outputs)


def _abstract(tree):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def evaluate_sets(
    run: Run,
    state: TrainState,
    sets: dict[str, ImageSet],
    norms: dict[str, preprocessing.Normalization],
    protocol: str | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics for every query/gallery modality pair of `sets` (Hafner 2018, Table 5 layout).

    Args:
      protocol: 'hafner' or 'full' (jaxreid.evaluation.evaluate_modality_pairs); default
        config.eval.protocol.
    """
    features = {}
    for modality, image_set in sets.items():
        features[modality] = dict(
            feats=run.embed(state, image_set, norms[modality]),
            ids=image_set.person_ids,
            cams=image_set.camera_ids,
            frames=image_set.frame_ids,
        )
    ev = run.config.eval
    return evaluation.evaluate_modality_pairs(
        features,
        protocol=protocol or ev.protocol,
        seed=ev.seed,
        repeats=ev.repeats,
        max_queries_per_id=ev.max_queries_per_id,
        metric=ev.metric,
    )


def test_results(
    run: Run,
    state: TrainState,
    sets: dict[str, ImageSet],
    norms: dict[str, preprocessing.Normalization],
) -> dict:
    """The final test under `config.eval.test_protocol` ('pairs', 'sysu' or 'regdb')."""
    ev = run.config.eval
    if ev.test_protocol == "pairs":
        return evaluate_sets(run, state, sets, norms)
    feats = {m: run.embed(state, s, norms[m]) for m, s in sets.items()}
    _warn_if_collapsed(
        {m: {"collapsed": evaluation.is_collapsed(f)} for m, f in feats.items()}, "Test"
    )
    if ev.test_protocol == "sysu":
        query, gallery = _modalities(sets, ("infrared", "rgb"), "sysu")
        return evaluation.sysu_mm01_settings(
            feats[query],
            sets[query].person_ids,
            sets[query].camera_ids,
            feats[gallery],
            sets[gallery].person_ids,
            sets[gallery].camera_ids,
            sets[gallery].file_index,
            settings=tuple(ev.sysu_settings),
            sampler=ev.sysu_sampler,
            perm_file=ev.sysu_perm_file or None,
            metric=ev.metric,
        )
    if ev.test_protocol == "regdb":
        visible, thermal = _modalities(sets, ("rgb", "thermal"), "regdb")
        return evaluation.regdb_trial(
            feats[visible],
            sets[visible].person_ids,
            feats[thermal],
            sets[thermal].person_ids,
            metric=ev.metric,
        )
    raise ValueError(
        f"config.eval.test_protocol={ev.test_protocol!r}; expected 'pairs', 'sysu' or 'regdb'."
    )


def _modalities(sets, needed, protocol):
    missing = [m for m in needed if m not in sets]
    if missing:
        raise ValueError(
            f"config.eval.test_protocol={protocol!r} needs modalities {needed}; "
            f"config.data.modalities has {tuple(sets)}."
        )
    return needed


def _warn_if_collapsed(results: dict, what: str) -> None:
    """Warns about the modality pairs (or modalities) of `results` flagged 'collapsed'."""
    pairs = [p for p, r in results.items() if isinstance(r, dict) and r.get("collapsed")]
    if pairs:
        logging.warning(
            "%s: the network embeds every query or gallery image of %s in one point (e.g. a "
            "triplet loss stuck at its margin, Hafner 2018 §4.3.2); these metrics mean nothing "
            "and print as n/a.",
            what,
            ", ".join(pairs),
        )


def validation_score(config: ml_collections.ConfigDict, results: dict) -> float:
    """Mean mAP over the validation pairs (the early-stopping criterion, Hafner 2018 §4.3.2).

    A collapsed embedding (every image in one point) scores 0: its chance-level mAP is an
    artefact of tie-breaking, and such a checkpoint must never be kept as the best one.
    """
    pairs = list(config.eval.val_pairs) or default_val_pairs(config.data.modalities)
    missing = [p for p in pairs if p not in results]
    if missing:
        raise ValueError(
            f"config.eval.val_pairs names {missing}; evaluated pairs are {sorted(results)}."
        )
    if any(results[p].get("collapsed") for p in pairs):
        return 0.0
    return float(np.mean([results[p]["mAP"] for p in pairs]))


def default_val_pairs(modalities) -> list[str]:
    if len(modalities) == 1:
        return [evaluation.pair_name(modalities[0], modalities[0])]
    a, b = modalities
    return [evaluation.pair_name(a, b), evaluation.pair_name(b, a)]


def load_data(config: ml_collections.ConfigDict):
    """Train / val / test ImageSets per modality and the per-modality normalisation."""
    splits = sources.load_splits(config.data)
    norms = {
        m: preprocessing.fit_normalization(
            splits["train"][m].images,
            config.data.input_layout,
            config.data.normalization,
            center=config.data.center_depth and m == "depth",
        )
        for m in config.data.modalities
    }
    return splits, norms


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains, validates and tests one network; resumes from `workdir` if it holds a run.

    Writes to `workdir`: checkpoints/ (latest), best/ (best validation mAP), TensorBoard
    summaries, results.json and results.md (rank-1/5/10 and mAP for every query/gallery
    modality pair, from the best checkpoint).

    Returns:
      The contents of results.json.
    """
    config_lib.validate(config)
    workdir = os.path.abspath(os.fspath(workdir))
    os.makedirs(workdir, exist_ok=True)
    writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
    writer.write_hparams(_flat_hparams(config))

    splits, norms = load_data(config)
    train_sets = [splits["train"][m] for m in config.data.modalities]
    index = sampler.index_identities([s.person_ids for s in train_sets])
    image_shape = (*config.data.image_size, preprocessing.input_channels(config.data.input_layout))
    run = Run(config, index.num_classes, image_shape)
    if jax.process_index() == 0:
        # What inference needs to rebuild the network and its input (jaxreid.inference).
        write_json_atomically(
            os.path.join(workdir, "run.json"),
            {
                "config": config.to_dict(),
                "num_classes": index.num_classes,
                "class_person_ids": index.labels,
                "image_shape": image_shape,
                "normalization": {m: n.to_dict() for m, n in norms.items()},
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

    latest = ocp.CheckpointManager(
        os.path.join(workdir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True),
    )
    best = ocp.CheckpointManager(
        os.path.join(workdir, "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1,
            best_fn=lambda metrics: metrics["val_mAP"],
            best_mode="max",
            keep_checkpoints_without_metrics=False,
            create=True,
        ),
    )
    state = run.init_state()
    if latest.latest_step() is not None:
        state = latest.restore(
            latest.latest_step(), args=ocp.args.StandardRestore(_abstract(state))
        )
        logging.info("Resumed from step %d in %s.", int(state.step), workdir)
    start_step = int(state.step)

    batches = pipeline.train_batches(
        train_sets,
        [norms[m] for m in config.data.modalities],
        index,
        num_identities=config.batch.num_identities,
        images_per_identity=config.batch.images_per_identity,
        layout=config.data.input_layout,
        seed=config.seed,
        start_step=start_step,
        num_steps=run.num_steps,
        random_flip=config.data.random_flip,
        pad_crop=config.data.pad_crop,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        sampling=config.batch.sampler,
    )
    report = periodic_actions.ReportProgress(num_train_steps=run.num_steps, writer=writer)
    global_batch = config.batch.num_identities * config.batch.images_per_identity
    history, tick = [], time.time()
    step = start_step
    for step in range(start_step + 1, run.num_steps + 1):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            state, metrics = run.train_step(state, run.global_batch(next(batches)))
        report(step)
        history.append(metrics)
        if step % config.log_every_steps == 0 or step == run.num_steps:
            summary = {
                k: float(np.mean([jax.device_get(m[k]) for m in history])) for k in history[0]
            }
            elapsed = time.time() - tick
            summary["images_per_sec"] = len(history) * global_batch / max(elapsed, 1e-9)
            writer.write_scalars(step, {f"train/{k}": v for k, v in summary.items()})
            history, tick = [], time.time()
        is_last = step == run.num_steps
        if step % config.eval_every_steps == 0 or is_last:
            with report.timed("eval"):
                val = evaluate_sets(run, state, splits["val"], norms, config.eval.val_protocol)
            score = validation_score(config, val)
            _warn_if_collapsed(val, f"Step {step} validation")
            writer.write_scalars(step, {"val/mAP": score, **_pair_scalars("val", val)})
            logging.info("Step %d: validation mAP %.2f%%.", step, 100 * score)
            best.save(step, args=ocp.args.StandardSave(state), metrics={"val_mAP": score})
        if step % config.checkpoint_every_steps == 0 or is_last:
            latest.save(step, args=ocp.args.StandardSave(state))
    latest.wait_until_finished()
    best.wait_until_finished()
    tick = time.time()

    final_step = int(state.step)
    best_step = best.best_step()
    if best_step is not None and best_step != int(state.step):
        state = best.restore(best_step, args=ocp.args.StandardRestore(_abstract(state)))
    test = test_results(run, state, splits["test"], norms)
    _warn_if_collapsed(test, "Test")
    results = {
        "config": config.to_dict(),
        "final_step": final_step,
        "step": int(state.step),  # Of the evaluated (best) checkpoint.
        "best_step": best_step,
        "num_classes": index.num_classes,
        "normalization": {m: n.to_dict() for m, n in norms.items()},
        "test": test,
        "test_time_sec": time.time() - tick,
    }
    if jax.process_index() == 0:
        write_results(workdir, results, config)
    writer.flush()
    latest.close()
    best.close()
    return results


def write_results(
    workdir: str, results: dict, config: ml_collections.ConfigDict, title: str = ""
) -> None:
    """results.json (everything) and results.md (the table under `title`); written atomically."""
    title = title or (
        f"{config.data.name}, {config.model.backbone}, {config.loss.name}: test set, "
        f"checkpoint of step {results['step']} (best validation mAP)"
    )
    table = f"### {title}\n\n" + results_table(config, results["test"])
    write_json_atomically(os.path.join(workdir, "results.json"), results)
    _write_atomically(os.path.join(workdir, "results.md"), table + "\n")
    print(table, flush=True)


def results_table(config: ml_collections.ConfigDict, test: dict) -> str:
    """The test results in the layout of the paper the protocol comes from."""
    if config.eval.test_protocol == "sysu":
        return evaluation.sysu_table(
            {config.model.backbone: test}, settings=tuple(config.eval.sysu_settings)
        )
    if config.eval.test_protocol == "regdb":
        return evaluation.format_table(test, row_header="RegDB direction")
    return evaluation.modality_pairs_table(test)


def write_json_atomically(path: str, data: Any) -> None:
    _write_atomically(path, json.dumps(_jsonable(data), indent=2))


def _write_atomically(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _pair_scalars(prefix: str, results: dict) -> dict[str, float]:
    """{'<prefix>/<pair>/<metric>': value} for the numeric summaries of every pair."""
    return {
        f"{prefix}/{pair}/{k}": float(v)
        for pair, r in results.items()
        for k, v in r.items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def _flat_hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
    flat = {}

    def visit(prefix, node):
        for k, v in node.items():
            if isinstance(v, ml_collections.ConfigDict):
                visit(f"{prefix}{k}.", v)
            else:
                flat[f"{prefix}{k}"] = str(v) if isinstance(v, (tuple, list)) else v

    visit("", config)
    return flat
