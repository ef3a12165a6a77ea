"""What G learns to reproduce in distillation Step II, and the batches that carry it.

Targets (Hafner 2018 §3.3, Eq. 6): F's embedding of each target image's *paired* source frame
(same frame_id), or, where the data has no pairs (RGB-infrared), the mean F embedding of the
identity's source images (§5.2.3.3). Teacher embeddings are computed once, by F in inference
mode, without augmentation: F is frozen, so they never change (the author's gt_extractor.py
does the same, with the test transform).
"""

from __future__ import annotations

from collections.abc import Iterator

import ml_collections
import numpy as np

from jaxreid.config import choices
from jaxreid.data import preprocessing, sampler
from jaxreid.data.image_set import ImageSet

TARGETS = choices.DISTILL_TARGETS  # config.distill.targets


def paired_targets(
    target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F's embedding of each target image's simultaneous source frame (same frame_id).

    Args:
      target: the target-modality images.
      source: the source-modality images of the same split.
      source_embeddings: [N_source, D] float32, F's embeddings of `source`, in its order.

    Returns:
      keep: [M] int64 indices of the target images that have a paired source frame.
      targets: [M, D] float32, the paired source embedding of each kept target image.

    Raises:
      ValueError: a frame_id occurs twice in `source` (the pairing would be ambiguous).
    """
    by_frame = {}
    for j, frame in enumerate(source.frame_ids):
        if frame == "":
            continue
        if frame in by_frame:
            raise ValueError(
                f"frame_id {frame!r} occurs twice in the {source.modality} images "
                f"({source.filenames[by_frame[frame]]}, {source.filenames[j]}); paired "
                "distillation needs one source frame per frame_id."
            )
        by_frame[frame] = j
    keep, rows = [], []
    for i, frame in enumerate(target.frame_ids):
        j = by_frame.get(frame) if frame != "" else None
        if j is not None:
            keep.append(i)
            rows.append(j)
    source_embeddings = np.asarray(source_embeddings, np.float32)
    return np.asarray(keep, np.int64), source_embeddings[np.asarray(rows, np.int64)]


def class_mean_targets(
    target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mean F embedding of each target image's identity over its source images
    (Hafner 2018 §5.2.3.3; the author's gt_extractor.extract_gt_av).

    Returns:
      keep: [M] int64 indices of the target images whose identity has source images.
      targets: [M, D] float32.
    """
    source_embeddings = np.asarray(source_embeddings, np.float32)
    means = {
        pid: source_embeddings[source.person_ids == pid].mean(axis=0)
        for pid in np.unique(source.person_ids)
    }
    keep = np.asarray([i for i, pid in enumerate(target.person_ids) if pid in means], np.int64)
    targets = (
        np.stack([means[target.person_ids[i]] for i in keep])
        if len(keep)
        else (np.zeros((0, source_embeddings.shape[1]), np.float32))
    )
    return keep, targets.astype(np.float32)


def resolve_targets(kind: str, target: ImageSet, source: ImageSet) -> str:
    """'paired' or 'class_mean' for config.distill.targets ('auto': paired if any pairs)."""
    if kind != "auto":
        return kind
    source_frames = set(source.frame_ids.tolist()) - {""}
    paired = any(f in source_frames for f in target.frame_ids.tolist() if f != "")
    return "paired" if paired else "class_mean"


def distillation_targets(
    kind: str, target: ImageSet, source: ImageSet, source_embeddings: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`paired_targets` or `class_mean_targets` for kind 'paired' / 'class_mean'."""
    if kind == "paired":
        keep, targets = paired_targets(target, source, source_embeddings)
    elif kind == "class_mean":
        keep, targets = class_mean_targets(target, source, source_embeddings)
    else:
        raise ValueError(f"config.distill.targets={kind!r}; expected one of {TARGETS}.")
    if not len(keep):
        raise ValueError(
            f"No {target.modality} image has a {kind} target in the {source.modality} images"
            + (
                "; set config.distill.targets='class_mean' for unpaired data."
                if kind == "paired"
                else "."
            )
        )
    return keep, targets


def step2_batches(
    target: ImageSet,
    targets: np.ndarray,
    norm: preprocessing.Normalization,
    config: ml_collections.ConfigDict,
    *,
    start_step: int,
    num_steps: int,
    process_index: int = 0,
    process_count: int = 1,
    augmentation: dict | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """This host's share of the P x K target-modality batches of steps start_step+1..num_steps.

    Args:
      target: the target images that have a target embedding.
      targets: [len(target), D] float32, the target embedding of each image of `target`.
      config: the run's config (batch, data augmentation, input layout, seed).

    Yields:
      image [B, H, W, C] float32 (augmented as config.data says), teacher [B, D] float32,
      label [B] int32; B = P * K / process_count.
    """
    index = sampler.index_identities([target.person_ids])
    p, k = config.batch.num_identities, config.batch.images_per_identity
    local = p * k // process_count
    lo, hi = process_index * local, (process_index + 1) * local
    from jaxreid.data import pipeline  # TensorFlow: the data layer only.

    augmentation = augmentation or {}
    batches = pipeline.train_batches(
        [target],
        [norm],
        index,
        num_identities=p,
        images_per_identity=k,
        layout=config.data.input_layout,
        seed=config.seed,
        start_step=start_step,
        num_steps=num_steps,
        random_flip=config.data.random_flip,
        pad_crop=config.data.pad_crop,
        process_index=process_index,
        process_count=process_count,
        **augmentation,
    )
    for step, batch in zip(range(start_step, num_steps), batches):
        # The pipeline draws the batch of `step` with this same pure function of (seed, step);
        # drawing it again tells which images it holds.
        labels, _, positions = sampler.sample_batch(index, p, k, config.seed, step)
        if not np.array_equal(labels[lo:hi], batch["label"]):
            raise RuntimeError(
                f"Step II batch {step}: the pipeline's labels differ from "
                "sampler.sample_batch's; the teacher targets would be misaligned."
            )
        yield {
            "image": batch["image"],
            "teacher": targets[positions[lo:hi]],
            "label": batch["label"],
        }
