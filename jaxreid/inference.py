"""Inference with trained runs: load a work directory, embed images, build search galleries.

A work directory written by `jaxreid.train.train_and_evaluate` holds `run.json` (the config,
the number of training classes, the input shape and each modality's normalisation) and Orbax
checkpoints of the train state in `best/<step>/` and `checkpoints/<step>/`. `load_run` rebuilds
the network from `run.json`, restores only its variables (parameters and `model_state`,
never the optimiser state), replicated on the devices of this process, whatever the number of
devices the run was trained on:

    model = load_run("/tmp/jaxreid/synthetic")                    # the best checkpoint
    rgb = model.embed(rgb_images, "rgb")                          # [N, D] float32
    gallery = model.build_gallery(depth_paths, "depth", ids=person_ids)
    distances, indices = gallery.search(rgb, k=10)

A cross-modal distillation run (`jaxreid.distill`: Step I in `<workdir>/step1`, Step II in
`<workdir>/step2`) loads as a `DistillationModel`, whose `embed` sends each modality to its
network (F or G): `load_distillation_run(workdir)`.

Imports JAX, Flax, Orbax and NumPy (Pillow when files are read); never TensorFlow. Images are
resized as the input pipeline resizes them (bilinear with anti-aliasing, rounded back to the
stored dtype; `resize_images`) and normalised by `jaxreid.data.preprocessing.normalize`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from typing import Any, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxreid import batching, models
from jaxreid.models.flip import flip_embed
from jaxreid.image_io import (  # noqa: F401 (re-exported: inference's public API)
    IMAGE_EXTENSIONS,
    MODALITY_CHANNELS,
    _to_modality_channels,
    list_images,
    read_image,
    resize_images,
)
from jaxreid.data import preprocessing
from jaxreid.search import Gallery
from jaxreid.training import checkpoints
from jaxreid.workdir import RUN_FILE, config_from_dict, read_run_info  # noqa: F401 (re-exported)

find_checkpoint = checkpoints.find_checkpoint

DEFAULT_BATCH_SIZE = 64


# --- embedding -------------------------------------------------------------------------------


class _Embedder:
    """embed_files / build_gallery on top of a subclass's `embed`."""

    modalities: tuple[str, ...]
    # The distance the run's own evaluation ranks by (config.eval.metric).
    metric: str

    def embed(self, images, modality: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        raise NotImplementedError

    def embed_files(
        self, paths: Sequence, modality: str, *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> np.ndarray:
        """[N, D] float32 embeddings of image files (any size; see `read_image`)."""
        paths = [os.fspath(p) for p in paths]
        outputs = []
        for start in range(0, len(paths), max(batch_size, 1)):
            images = [read_image(p) for p in paths[start : start + batch_size]]
            outputs.append(self.embed(images, modality, batch_size=batch_size))
        if not outputs:
            return self.embed([], modality)
        return np.concatenate(outputs)

    def build_gallery(
        self,
        images,
        modality: str,
        *,
        ids=None,
        cams=None,
        filenames=None,
        metric: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> Gallery:
        """A searchable `jaxreid.search.Gallery` of images of one modality.

        Args:
          images: [N, H, W, C] images, a sequence of images, or a sequence of file paths
            (then `filenames` defaults to the paths).
          ids, cams: [N] int person / camera ids (None: unknown, stored as -1).
          filenames: [N] str (None: the paths, or '').
          metric: the gallery's default search metric; None = the run's own
            (`config.eval.metric`: e.g. cosine for the main job and AGW, Euclidean for the
            thesis's networks), so a search ranks as the run's evaluation did.
        """
        if _are_paths(images):
            paths = [os.fspath(p) for p in images]
            embeddings = self.embed_files(paths, modality, batch_size=batch_size)
            filenames = paths if filenames is None else filenames
        else:
            embeddings = self.embed(images, modality, batch_size=batch_size)
        return Gallery(
            embeddings,
            ids=ids,
            cams=cams,
            modality=modality,
            filenames=filenames,
            metric=self.metric if metric is None else metric,
        )

    def _check_modality(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(
                f"modality {modality!r} is not one this model embeds; it embeds {self.modalities}"
            )


def _are_paths(items) -> bool:
    if isinstance(items, np.ndarray):
        return items.dtype.kind in "US"
    return (
        isinstance(items, (list, tuple))
        and len(items) > 0
        and all(isinstance(p, (str, os.PathLike)) for p in items)
    )


@dataclasses.dataclass
class ReidModel(_Embedder):
    """One trained network with everything needed to embed images of its modalities.

    Attributes:
      config: the run's config (`default_config()` overridden by run.json).
      model: the Flax network (ReIDNet or DistanceNet).
      variables: {'params': ..., 'batch_stats': ..., ...} replicated on `mesh`.
      normalizations: {modality: preprocessing.Normalization} fitted on the training images.
      image_shape: (H, W, C) network input.
      num_classes: training identities; class_person_ids: [C] their dataset person ids.
      step: the restored checkpoint's step; checkpoint_dir: where it was read.
      workdir: the run directory.
      mesh: a one-axis ('data') mesh over this process's devices; batches are split over it.
    """

    config: ml_collections.ConfigDict
    model: flax.linen.Module
    variables: Any
    normalizations: dict[str, preprocessing.Normalization]
    image_shape: tuple[int, int, int]
    num_classes: int
    class_person_ids: np.ndarray
    step: int
    checkpoint_dir: str
    workdir: str
    mesh: jax.sharding.Mesh

    def __post_init__(self):
        data = NamedSharding(self.mesh, P("data"))
        replicated = NamedSharding(self.mesh, P())

        self._data_sharding = data
        self._forward = {
            m: jax.jit(
                functools.partial(self.features, modality=m),
                in_shardings=(replicated, data),
                out_shardings=replicated,
            )
            for m in self.modalities
        }

    def features(self, variables, images, modality: str) -> jax.Array:
        """[B, D] float32: what the run's own evaluation ranks for normalised images [B, H, W,
        C] of `modality` (training.steps.embed_step): eval mode, that modality's stream of a
        two-stream network, `config.eval.feature`, the flip test if `config.eval.flip_test`.
        Traceable (jit, jax2tf, jax2onnx); `export` exports it."""
        slot = self.modalities.index(modality)
        feature = self.config.eval.feature

        def embed(x):
            embedding, intermediates = self.model.apply(variables, x, train=False, modality=slot)
            return models.select_feature(embedding, intermediates, feature).astype(jnp.float32)

        return flip_embed(embed, images) if self.config.eval.flip_test else embed(images)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.config.data.modalities)

    @property
    def metric(self) -> str:
        return self.config.eval.metric

    @property
    def layout(self) -> str:
        return self.config.data.input_layout

    @property
    def embedding_dim(self) -> int:
        return int(
            jax.eval_shape(
                self._forward[self.modalities[0]],
                self.variables,
                jax.ShapeDtypeStruct((self.mesh.size, *self.image_shape), jnp.float32),
            ).shape[1]
        )

    def preprocess(self, images, modality: str) -> np.ndarray:
        """Stored images -> [N, H, W, C] float32 network input of this run.

        Args:
          images: [N, H, W, C] array or a sequence of [H, W, C] / [H, W] images (sizes may
            differ) of one modality, with the dtype the run was trained on: uint8 RGB /
            infrared, uint16 depth in millimetres (or the dataset's 8-bit encoding if it was
            trained on that); float images are taken as already in stored units (0-255 for
            uint8-trained RGB).
          modality: one of `self.modalities`.

        Raises:
          ValueError: integer images of another dtype than the run's, mixed dtypes.

        Warns:
          ImageScaleWarning: float images whose values all lie in [0, 1] given to a modality
            trained on 0-255 (or 0-65535) integers: they would be embedded as nearly black.
        """
        self._check_modality(modality)
        norm = self.normalizations[modality]
        height, width = self.image_shape[:2]
        if isinstance(images, np.ndarray) and images.ndim == 4:
            _check_float_scale([images], norm, modality)
            batch = resize_images(_to_batch_channels(images, modality), (height, width))
        else:
            items = [
                _to_modality_channels(img, modality, f"images[{i}]") for i, img in enumerate(images)
            ]
            if not items:
                return np.zeros((0, *self.image_shape), np.float32)
            dtypes = {img.dtype for img in items}
            if len(dtypes) > 1:
                raise ValueError(f"{modality} images of mixed dtypes {sorted(map(str, dtypes))}")
            _check_float_scale(items, norm, modality)
            batch = np.stack([resize_images(img[None], (height, width))[0] for img in items])
        _check_dtype(batch.dtype, norm, modality)
        slot = self.modalities.index(modality)
        return preprocessing.normalize(batch, norm, self.layout, slot)

    def embed(self, images, modality: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """[N, D] float32 embeddings (eval mode) of images of one modality: the features the
        run's own evaluation ranks (the embedding, or `config.eval.feature` if set).

        Args:
          images: see `preprocess`; resized to the run's image size and normalised with the
            modality's training statistics.
          modality: one of `self.modalities`.
          batch_size: images per compiled call, rounded up to a multiple of the device
            count. The last batch is padded to the next power-of-two multiple of the device
            count, so at most log2(batch_size) shapes are compiled.
        """
        x = self.preprocess(images, modality)
        out = batching.map_padded(
            lambda batch: self._forward[modality](
                self.variables, jax.device_put(batch, self._data_sharding)
            ),
            x,
            batch_size=batch_size,
            num_devices=self.mesh.size,
        )
        return np.zeros((0, self.embedding_dim), np.float32) if out is None else out


def _to_batch_channels(images: np.ndarray, modality: str) -> np.ndarray:
    want = MODALITY_CHANNELS.get(modality, images.shape[-1])
    if images.shape[-1] == want:
        return images
    return np.stack(
        [_to_modality_channels(img, modality, f"images[{i}]") for i, img in enumerate(images)]
    )


def _check_dtype(dtype, norm: preprocessing.Normalization, modality: str) -> None:
    if not np.issubdtype(dtype, np.integer):
        return
    scale = preprocessing.dtype_scale(dtype)
    if scale != norm.scale:
        raise ValueError(
            f"{modality} images are {np.dtype(dtype).name} (largest value {scale:g}) but the run "
            f"was trained on {modality} images whose largest value is {norm.scale:g}; convert "
            "them to the training dtype first (e.g. 16-bit depth in millimetres)"
        )


class ImageScaleWarning(UserWarning):
    """Float images in [0, 1] given to a run trained on 0-255 / 0-65535 integer images."""


def _check_float_scale(arrays, norm: preprocessing.Normalization, modality: str) -> None:
    """Warns when float images lie in [0, 1] but the run's stored units go up to norm.scale.

    `preprocess` takes float images as already in stored units, so [0, 1] images of a
    uint8-trained run reach the network as values <= 1/255 of white: nearly black, with
    embeddings that rank nothing, and no error anywhere.
    """
    if norm.scale <= 1.0:
        return
    floats = [np.asarray(a) for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating)]
    floats = [a for a in floats if a.size]
    if not floats:
        return
    low = min(float(np.nanmin(a)) for a in floats)
    high = max(float(np.nanmax(a)) for a in floats)
    if 0.0 <= low and 0.0 < high <= 1.0:
        warnings.warn(
            f"{modality} images are {floats[0].dtype} with values in [{low:g}, {high:g}], but "
            f"the run was trained on {modality} images in stored units up to {norm.scale:g}: "
            f"they are embedded as nearly black images. Multiply them by {norm.scale:g} (or "
            f"pass the {'uint8' if norm.scale == 255 else 'uint16'} images themselves).",
            ImageScaleWarning,
            stacklevel=3,
        )


def _mesh(devices=None) -> jax.sharding.Mesh:
    devices = jax.local_devices() if devices is None else list(devices)
    return jax.make_mesh(
        (len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices
    )


def load_run(workdir, *, checkpoint: str | int = "best", devices=None) -> ReidModel:
    """Loads a trained network from its run directory.

    Args:
      workdir: a directory written by `jaxreid.train.train_and_evaluate`.
      checkpoint: 'best' (best validation mAP), 'latest', or a step number.
      devices: devices to replicate the variables on and split batches over (default: every
        local device). Need not be the number the run was trained on.

    Returns:
      a `ReidModel`; `embed(images, modality)` gives [N, D] float32 embeddings.
    """
    mesh = _mesh(devices)
    run = checkpoints.load_trained_run(workdir, checkpoint, NamedSharding(mesh, P()))
    return ReidModel(
        config=run.config,
        model=run.model,
        variables=run.variables,
        normalizations=run.normalization,
        image_shape=run.image_shape,
        num_classes=run.num_classes,
        class_person_ids=run.class_person_ids,
        step=run.step,
        checkpoint_dir=run.checkpoint_dir,
        workdir=run.workdir,
        mesh=mesh,
    )


# --- cross-modal distillation pairs ----------------------------------------------------------

STEP_DIRS = ("step1", "step2")


@dataclasses.dataclass
class DistillationModel(_Embedder):
    """The networks F (Step I) and G (Step II) of a cross-modal distillation run (Hafner 2018,
    §3.3.3): each modality is embedded by its own network into the one embedding space.

    Attributes:
      networks: {modality: ReidModel}; `embed(images, modality)` uses networks[modality].
      step1, step2: F (trained on the source modality) and G (distilled on the target one).
    """

    networks: dict[str, ReidModel]
    step1: ReidModel
    step2: ReidModel

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.networks)

    @property
    def metric(self) -> str:
        """The metric Step II's test ranked the pair by (step2/run.json's config.eval)."""
        return self.step2.config.eval.metric

    def embed(self, images, modality: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """[N, D] float32 embeddings by the network of `modality` (see ReidModel.embed)."""
        self._check_modality(modality)
        return self.networks[modality].embed(images, modality, batch_size=batch_size)


def load_distillation_run(
    workdir,
    *,
    checkpoint: str | int = "best",
    modalities: Mapping[str, str] | None = None,
    devices=None,
) -> DistillationModel:
    """Loads the pair F, G of a `jaxreid.distill` work directory.

    Step II's run directory is `<workdir>/step2`; its run.json names the network of each
    modality ('networks': F's directory, `<workdir>/step1` unless Step II started from an
    existing Step I run, and G's). A recorded directory that no longer exists (the work
    directory was moved or copied) is looked for under `<workdir>` by its base name.

    Args:
      workdir: the distillation work directory.
      checkpoint: as `load_run`, for both networks ('best': the checkpoints each step tested).
      modalities: {modality: 'step1' | 'step2'} to override the assignment. Without it and
        without 'networks' in run.json: Step I's modality goes to F, Step II's other
        modality to G.
    """
    workdir = os.path.abspath(os.fspath(workdir))
    step2_dir = os.path.join(workdir, STEP_DIRS[1])
    recorded = read_run_info(step2_dir).get("networks") or {}
    step1_dir = os.path.join(workdir, STEP_DIRS[0])
    for entry in recorded.values():
        path = _relocate(entry.get("workdir", ""), workdir)
        if path != step2_dir:
            step1_dir = path
    loaded = {
        name: load_run(path, checkpoint=checkpoint, devices=devices)
        for name, path in zip(STEP_DIRS, (step1_dir, step2_dir))
    }
    if modalities is None and recorded:
        modalities = {
            m: STEP_DIRS[1]
            if _relocate(e.get("workdir", ""), workdir) == step2_dir
            else STEP_DIRS[0]
            for m, e in recorded.items()
        }
    if modalities is None:
        first = loaded["step1"].modalities[0]
        second = [m for m in loaded["step2"].modalities if m != first]
        if not second:
            raise ValueError(
                f"{workdir}: Step I and Step II both embed only {first!r}; pass "
                "modalities={...} naming the step of each modality"
            )
        modalities = {first: "step1", **{m: "step2" for m in second}}
    networks = {}
    for modality, step in modalities.items():
        if step not in loaded:
            raise ValueError(f"modalities[{modality!r}]={step!r}; expected one of {STEP_DIRS}")
        loaded[step]._check_modality(modality)  # pylint: disable=protected-access
        networks[modality] = loaded[step]
    return DistillationModel(networks=networks, step1=loaded["step1"], step2=loaded["step2"])


def _relocate(path: str, workdir: str) -> str:
    """`path` if it is a run directory, else `<workdir>/<basename(path)>` if that is one."""
    path = os.path.abspath(path) if path else ""
    if path and os.path.exists(os.path.join(path, RUN_FILE)):
        return path
    moved = os.path.join(workdir, os.path.basename(path.rstrip(os.sep)))
    if path and os.path.exists(os.path.join(moved, RUN_FILE)):
        return moved
    raise FileNotFoundError(
        f"{os.path.join(workdir, STEP_DIRS[1], RUN_FILE)} names the network directory "
        f"{path!r}, which holds no {RUN_FILE} (nor does {moved!r})"
    )


__all__ = [
    "DistillationModel",
    "ImageScaleWarning",
    "ReidModel",
    "config_from_dict",
    "find_checkpoint",
    "list_images",
    "load_distillation_run",
    "load_run",
    "read_image",
    "read_run_info",
    "resize_images",
]
