"""Export of trained networks: TensorFlow SavedModel, TFLite and ONNX graphs.

    python -m jaxreid.export --workdir=/tmp/jaxreid/synthetic --format=onnx --out=/tmp/export

Each exported graph embeds the images of one modality as a camera gives them:

    input  'images'      [N, H, W, C] uint8 (RGB, infrared; C = 3 / 1) or uint16 (depth in
                         millimetres, C = 1) -- the dtype and size the run was trained on
    output 'embeddings'  [N, D] float32, the features the run's evaluation ranks

with a dynamic batch N. The graph normalises inside, exactly as `ReidModel.preprocess` does
after its resize (channel conversion, the depth person-distance centring of
`preprocessing.center_person`, the modality's training mean / std, the input layout's zero
padding), so callers must NOT normalise the images themselves; resizing to H x W is left to
the caller (cameras deliver a fixed size). A one-stream run gives one graph per modality (the
dtype and statistics differ), a distillation pair (`jaxreid.distill`) one graph per modality
from its own network (F or G). Beside each graph `<modality>.json` records the modality,
input shape and dtype, normalisation, embedding size, metric, source run and step.

Routes: SavedModel through `jax.experimental.jax2tf` (StableHLO serialised in the graph for
the CPU platform, so TensorFlow runs it on CPU; variables as tf.Variables), TFLite by converting that SavedModel with
`tf.lite.TFLiteConverter`, ONNX through `jax2onnx` (opset 21). TensorFlow and jax2onnx are
imported only when a graph of that format is written (`pip install "jaxreid[export]"`).

Wrong inputs fail in the runtimes themselves (checked in tests/test_export.py):
SavedModel signature 'serving_default' -- tf.errors.InvalidArgumentError ("expected to be a
uint8 tensor but is a float tensor"; "Shape of tensor images [2,16,16,3] is not compatible
with expected shape [?,32,16,3]"); TFLite `set_tensor` -- ValueError ("Got value of type
FLOAT32 but expected type UINT8", "Dimension mismatch"); onnxruntime -- InvalidArgument
("Unexpected input data type", "Got invalid dimensions").
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxreid import inference
from jaxreid.data import preprocessing

FORMATS = ("saved_model", "tflite", "onnx")
# File (or directory) name of a modality's graph in the output directory, per format.
_SUFFIX = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
# ONNX opset: 21 is what current onnxruntime releases run in full.
ONNX_OPSET = 21
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
# preprocessing.center_person's percentile of the valid depths (the person's distance).
_PERSON_PERCENTILE = preprocessing._PERSON_PERCENTILE  # pylint: disable=protected-access
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as preprocessing.convert_channels


# --- the graph -------------------------------------------------------------------------------


def input_dtype(norm: preprocessing.Normalization) -> np.dtype:
    """The unsigned integer dtype whose largest value is `norm.scale` (uint8 / uint16)."""
    for dtype in (np.uint8, np.uint16):
        if float(np.iinfo(dtype).max) == float(norm.scale):
            return np.dtype(dtype)
    raise ValueError(
        f"normalization scale {norm.scale:g} is not the largest value of uint8 or uint16; "
        "only integer camera images can be exported"
    )


def _order_statistics(x: jax.Array, valid: jax.Array, ranks: jax.Array, top: float):
    """[N, R] the `ranks`-th smallest valid values of each row of x [N, P].

    ranks: [N, R] float32 whole numbers, 0-based.

    x holds integers in [0, top] (the images are integer typed). Bisection on the value,
    ceil(log2(top)) steps of compare-and-count: exact, and made of ops that every runtime
    supports (TFLite converts neither sort nor top_k of the current StableHLO).
    """
    target = ranks + 1.0  # smallest v with count(x <= v) >= rank + 1
    lo = jnp.zeros(ranks.shape, jnp.float32)  # count(x <= lo) < target (valid means > 0)
    hi = jnp.full(ranks.shape, float(top), jnp.float32)  # count(x <= hi) >= target
    for _ in range(int(np.ceil(np.log2(max(top, 2.0))))):
        mid = jnp.floor((lo + hi) / 2.0)
        below = (valid[:, None, :] & (x[:, None, :] <= mid[:, :, None])).astype(jnp.float32)
        enough = below.sum(axis=2) >= target
        hi = jnp.where(enough, mid, hi)
        lo = jnp.where(enough, lo, mid)
    return hi


def center_person_graph(x: jax.Array, top: float) -> jax.Array:
    """JAX twin of `preprocessing.center_person` for integer-valued images [N, H, W, C].

    The level is np.nanpercentile(valid values, 15) with linear interpolation between the
    order statistics at (n - 1) * 0.15 (NumPy's default method); holes (0) stay 0.
    """
    # [N, 1] columns and slices throughout: an integer index on the symbolic batch dimension
    # becomes a dynamic gather, which TFLite does not convert.
    flat = x.reshape(x.shape[0], -1)
    valid = flat > 0
    count = valid.sum(axis=1, keepdims=True).astype(jnp.float32)
    position = (count - 1.0) * (_PERSON_PERCENTILE / 100.0)
    below = jnp.maximum(jnp.floor(position), 0.0)
    above = jnp.minimum(below + 1.0, jnp.maximum(count - 1.0, 0.0))
    values = _order_statistics(flat, valid, jnp.concatenate([below, above], axis=1), top)
    low = jax.lax.slice_in_dim(values, 0, 1, axis=1)  # jnp indexing would gather
    high = jax.lax.slice_in_dim(values, 1, 2, axis=1)
    level = low + (high - low) * (position - jnp.floor(position))
    level = jnp.where(count > 0, level, 0.0)[:, :, None, None]
    return jnp.where(x > 0, x - level, 0.0)


def normalize_graph(
    images: jax.Array, norm: preprocessing.Normalization, layout: str, slot: int = 0
) -> jax.Array:
    """JAX twin of `preprocessing.normalize`: [N, H, W, C] integer images -> network input
    [N, H, W, input_channels(layout)] float32 (same operations, same float32 order)."""
    x = images.astype(jnp.float32)
    channels, have = preprocessing.modality_channels(layout), x.shape[-1]
    if have == 3 and channels == 1:
        x = x @ jnp.asarray(_LUMA, jnp.float32)[:, None]
    elif have == 1 and channels == 3:
        x = jnp.concatenate([x, x, x], axis=-1)
    elif have != channels:
        raise ValueError(f"Cannot convert {have}-channel images to {channels} channels.")
    if norm.center:
        x = center_person_graph(x, float(norm.scale))
    mean = jnp.asarray(norm.mean, jnp.float32)
    std = jnp.asarray(norm.std, jnp.float32)
    x = (x / jnp.float32(norm.scale) - mean) / std
    pad = preprocessing._ZERO_PAD_CHANNEL.get(layout)  # pylint: disable=protected-access
    if pad is None:
        return x
    if slot > 1:
        raise ValueError(f"Zero-padding layouts take two modalities; got modality slot {slot}.")
    zeros = jnp.zeros_like(x[..., :1])
    parts = [zeros] * preprocessing.input_channels(layout)
    parts[pad[slot]] = x[..., :1]
    return jnp.concatenate(parts, axis=-1)


def embedding_function(
    model: inference.ReidModel, modality: str
) -> tuple[Callable, jax.ShapeDtypeStruct]:
    """(f(variables, images) -> [N, D] float32, the input [N, H, W, C] spec without N).

    f is what every format exports: normalisation inside, then `ReidModel.features` (the
    modality's stream, the feature the run ranks, the flip test if the run used it).
    """
    model._check_modality(modality)  # pylint: disable=protected-access
    norm = model.normalizations[modality]
    layout, slot = model.layout, model.modalities.index(modality)
    channels = inference.MODALITY_CHANNELS.get(modality, 1)
    height, width = model.image_shape[:2]

    def embed(variables, images):
        return model.features(variables, normalize_graph(images, norm, layout, slot), modality)

    spec = jax.ShapeDtypeStruct((height, width, channels), input_dtype(norm))
    return embed, spec


def metadata(model: inference.ReidModel, modality: str, fmt: str, filename: str) -> dict:
    """The JSON sidecar of one exported graph."""
    _, spec = embedding_function(model, modality)
    norm = model.normalizations[modality]
    return {
        "format": fmt,
        "file": filename,
        "modality": modality,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, *spec.shape],
            "dtype": np.dtype(spec.dtype).name,
            "layout": "NHWC",
            "units": "millimetres" if modality == "depth" and spec.dtype == np.uint16 else "",
        },
        "normalization": {
            **norm.to_dict(),
            "input_layout": model.layout,
            "slot": model.modalities.index(modality),
            "inside_graph": True,
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, model.embedding_dim],
            "dtype": "float32",
            "feature": model.config.eval.feature or "embedding",
        },
        "embedding_size": model.embedding_dim,
        "metric": model.config.eval.metric,
        "source": {
            "workdir": model.workdir,
            "checkpoint_dir": model.checkpoint_dir,
            "step": int(model.step),
            "backbone": model.config.model.backbone,
        },
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# --- writers ---------------------------------------------------------------------------------


def _write_saved_model(embed, spec, variables, path: str) -> None:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from jax.experimental import jax2tf  # pylint: disable=import-outside-toplevel

    height, width, channels = spec.shape
    converted = jax2tf.convert(
        embed,
        polymorphic_shapes=[None, f"(b, {height}, {width}, {channels})"],
        with_gradient=False,
        native_serialization_platforms=("cpu",),
    )
    module = tf.Module()
    # Variables (not constants) keep the graph small and the weights inspectable.
    module.variables_tree = tf.nest.map_structure(
        lambda v: tf.Variable(np.asarray(v), trainable=False), jax.device_get(variables)
    )
    signature = tf.TensorSpec([None, height, width, channels], tf.as_dtype(spec.dtype), INPUT_NAME)

    @tf.function(autograph=False, input_signature=[signature])
    def serve(images):
        # The signature checks the dtype only; a clear error for a wrong image size too.
        images = tf.ensure_shape(images, signature.shape)
        return {OUTPUT_NAME: converted(module.variables_tree, images)}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def _write_tflite(embed, spec, variables, path: str) -> None:
    import tempfile  # pylint: disable=import-outside-toplevel

    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory() as tmp:
        _write_saved_model(embed, spec, variables, os.path.join(tmp, "saved_model"))
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "saved_model"))
        flatbuffer = converter.convert()  # float32 kernels, no quantisation
    with open(path, "wb") as f:
        f.write(flatbuffer)


def _max_pool_by_slices(x, *, window_dimensions, window_strides, padding, **dilations):
    """lax.reduce_window_max as the maximum of strided slices of the -inf padded input.

    Equal to the original (max is exact); used for ONNX, where jax2onnx lowers NHWC max
    pooling to a MaxPool over all four axes that onnxruntime rejects."""
    if any(d != 1 for v in dilations.values() for d in v):
        raise NotImplementedError(f"max pooling with dilations {dilations} cannot be exported")
    # Padding by concatenation: jax2onnx lowers lax.pad with static shapes only, and the
    # batch dimension is symbolic.
    for dim, (lo, hi) in enumerate(padding):
        if lo or hi:
            fill = jnp.full_like(jax.lax.slice_in_dim(x, 0, 1, axis=dim), -jnp.inf)
            x = jnp.concatenate([fill] * lo + [x] + [fill] * hi, axis=dim)
    out = None
    for offset in np.ndindex(*window_dimensions):
        starts, limits = [], []
        for dim, (start, window, stride) in enumerate(
            zip(offset, window_dimensions, window_strides)
        ):
            size = (x.shape[dim] - window) // stride + 1
            starts.append(start)
            limits.append(
                x.shape[dim] if window == 1 and stride == 1 else start + (size - 1) * stride + 1
            )
        part = jax.lax.slice(x, starts, limits, window_strides)
        out = part if out is None else jnp.maximum(out, part)
    return out


def _evaluate_inlined(closed_jaxpr, *args):
    """Evaluates a closed jaxpr with nested jit calls inlined and max pooling by slices."""
    jaxpr = closed_jaxpr.jaxpr
    env = {}

    def read(var):
        return var.val if isinstance(var, jax.extend.core.Literal) else env[var]

    for var, value in zip(jaxpr.constvars, closed_jaxpr.consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, args):
        env[var] = value
    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in ("pjit", "jit", "closed_call") and "jaxpr" in eqn.params:
            outs = _evaluate_inlined(eqn.params["jaxpr"], *values)
        elif name == "reduce_window_max":
            outs = [_max_pool_by_slices(values[0], **eqn.params)]
        else:
            params = eqn.primitive.get_bind_params(eqn.params)
            subfuns = []
            if isinstance(params, tuple):  # JAX < 0.8 returned (subfuns, params)
                subfuns, params = params
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*subfuns, *values, **params)
            if not eqn.primitive.multiple_results:
                outs = [outs]
        for var, value in zip(eqn.outvars, outs):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


@contextlib.contextmanager
def _quiet(logger_name: str, level: int = logging.ERROR):
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def _stdout_kept_unless_failing():
    """Holds what Python code prints to stdout; shows it on stderr only if the block fails.

    jax2onnx 0.12 prints a "DEBUG: conv_dtype_enum=FLOAT" line for every convolution it
    converts (about 40 for a ResNet18); nothing a user can act on, unless the export fails.
    """
    held = io.StringIO()
    try:
        with contextlib.redirect_stdout(held):
            yield
    except BaseException:
        sys.stderr.write(held.getvalue())
        raise


def _write_onnx(embed, spec, variables, path: str) -> None:
    with _quiet("jax2onnx"):  # it logs every optional plugin it cannot import
        import jax2onnx  # pylint: disable=import-outside-toplevel

    variables = jax.device_get(variables)
    shape = jax.export.symbolic_shape("N, {}, {}, {}".format(*spec.shape))
    images = jax.ShapeDtypeStruct(shape, spec.dtype)
    # Traced by JAX first: jax2onnx then sees lax primitives only (its Flax-level rewrites
    # do not accept Flax's positional pooling arguments), the variables become constants.
    closed = jax.make_jaxpr(lambda x: embed(variables, x))(images)
    # jax2onnx logs notes on shapes it leaves untyped, and prints debugging lines.
    with _quiet("jax2onnx"), _quiet("onnx_ir"), _stdout_kept_unless_failing():
        proto = jax2onnx.to_onnx(
            lambda x: _evaluate_inlined(closed, x)[0],
            [images],
            model_name="jaxreid",
            opset=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
        )
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


_WRITERS = {"saved_model": _write_saved_model, "tflite": _write_tflite, "onnx": _write_onnx}


# --- releases known not to work together ------------------------------------------------------
# Measured 2026-12 (issue #26) with the newest releases the registry serves; each rule names the
# newest release it was seen with, so a newer one is tried again rather than refused.
_TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf-nightly")


def _installed_versions() -> dict[str, str]:
    """{'jax', 'tensorflow', 'jax2onnx': version} of what is installed (absent if missing),
    read from the package metadata, without importing TensorFlow."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel

    versions = {}
    for key, names in (("jax", ("jax",)), ("tensorflow", _TF_DISTRIBUTIONS),
                       ("jax2onnx", ("jax2onnx",))):
        for name in names:
            try:
                versions[key] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def _release(version: str) -> tuple[int, ...]:
    """'2.21.0rc1' -> (2, 21, 0): the release numbers, enough to order these rules."""
    return tuple(int(part) for part in re.match(r"\d+(?:\.\d+)*", version).group().split("."))


def known_incompatibility(fmt: str, versions: dict[str, str] | None = None) -> str | None:
    """Why `fmt` cannot be exported with these releases, or None if no break is known.

    Args:
      fmt: one of FORMATS.
      versions: {'jax', 'tensorflow', 'jax2onnx': version string}; default: the installed ones.
    """
    versions = _installed_versions() if versions is None else versions
    jax_version = versions["jax"]
    tf_version = versions.get("tensorflow")
    onnx_version = versions.get("jax2onnx")
    newer_jax = _release(jax_version) >= (0, 12)
    if fmt in ("saved_model", "tflite") and newer_jax and tf_version:
        if _release(tf_version) <= (2, 21, 0):
            return (f"jax {jax_version} serialises StableHLO that TensorFlow {tf_version} cannot "
                    "read (its XlaCallModule lacks vhlo.custom_call_v2, used by the dynamic batch "
                    "size's shape check); export with jax < 0.12 (0.10.2 is tested) or a newer "
                    "TensorFlow")
    if fmt == "onnx" and newer_jax and onnx_version:
        if _release(onnx_version) <= (0, 17, 1):
            return (f"jax2onnx {onnx_version} does not run on jax {jax_version} (it reads "
                    "jax._src.core.ClosedJaxpr, gone in jax 0.12); export with jax < 0.12 "
                    "(0.10.2 is tested) or a newer jax2onnx")
    return None


def export_model(model: inference.ReidModel, modality: str, fmt: str, out_dir) -> str:
    """Writes the graph of one modality and its JSON sidecar; returns the graph's path.

    Args:
      model: a loaded run (`inference.load_run`).
      modality: one of `model.modalities`.
      fmt: one of FORMATS.
      out_dir: created if missing; the graph is `<out_dir>/<modality>{'', .tflite, .onnx}`
        (a directory for saved_model) and the sidecar `<out_dir>/<modality>.json`.

    Raises:
      ValueError: an unknown `fmt`.
      RuntimeError: the installed releases are known not to export `fmt`
        (`known_incompatibility`), before any work.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}; expected one of {FORMATS}")
    reason = known_incompatibility(fmt)
    if reason is not None:
        raise RuntimeError(f"Cannot export format={fmt!r}: {reason}.")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    embed, spec = embedding_function(model, modality)
    filename = modality + _SUFFIX[fmt]
    path = os.path.join(out_dir, filename)
    _WRITERS[fmt](embed, spec, model.variables, path)
    with open(os.path.join(out_dir, f"{modality}.json"), "w") as f:
        json.dump(metadata(model, modality, fmt, filename), f, indent=2)
    return path


def export_run(workdir, fmt: str, out_dir, *, checkpoint: str | int = "best") -> dict[str, str]:
    """Exports every modality of a run directory or a distillation pair (step1/, step2/).

    Returns:
      {modality: path of its graph}.
    """
    workdir = os.fspath(workdir)
    if os.path.exists(os.path.join(workdir, inference.RUN_FILE)):
        run = inference.load_run(workdir, checkpoint=checkpoint)
        networks = {m: run for m in run.modalities}
    elif all(os.path.isdir(os.path.join(workdir, s)) for s in inference.STEP_DIRS):
        networks = inference.load_distillation_run(workdir, checkpoint=checkpoint).networks
    else:
        raise FileNotFoundError(
            f"--workdir={workdir!r} holds neither {inference.RUN_FILE} nor the distillation "
            f"steps {inference.STEP_DIRS}"
        )
    return {m: export_model(network, m, fmt, out_dir) for m, network in networks.items()}


def main(argv):  # pragma: no cover - exercised through a subprocess in the tests
    from absl import app, flags  # pylint: disable=import-outside-toplevel

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from jaxreid import log_filters  # pylint: disable=import-outside-toplevel

    log_filters.install()  # Orbax's per-file and JAX's TPU-probe INFO lines
    values = flags.FLAGS
    checkpoint = values.checkpoint
    checkpoint = int(checkpoint) if checkpoint.lstrip("-").isdigit() else checkpoint
    try:
        paths = export_run(values.workdir, values.format, values.out, checkpoint=checkpoint)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"Error: {e}") from None
    for modality, path in paths.items():
        print(f"{modality}: {path} ({os.path.splitext(path)[0]}.json)")


__all__ = [
    "FORMATS",
    "center_person_graph",
    "embedding_function",
    "export_model",
    "export_run",
    "input_dtype",
    "metadata",
    "normalize_graph",
]


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app as _app
    from absl import flags as _flags

    _flags.DEFINE_string("workdir", None, "Run directory, or a distillation directory.")
    _flags.DEFINE_enum("format", None, list(FORMATS), "Graph format.")
    _flags.DEFINE_string("out", None, "Output directory.")
    _flags.DEFINE_string("checkpoint", "best", "'best', 'latest' or a step number.")
    _flags.mark_flags_as_required(["workdir", "format", "out"])
    _app.run(main)
