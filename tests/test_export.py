"""jaxreid.export: each format run by its own runtime against jaxreid.inference.

The run directories are written here as the trainer writes them (run.json + an Orbax
checkpoint of {step, params, model_state, opt_state} in best/<step>), with the `:quick`
synthetic network (ResNet18 of width 8, 32x16 inputs) at random weights and random
BatchNorm statistics: training one would cost a minute and test nothing more about export.
Reference: `inference.load_run(...).embed` on the same uint8 / uint16 images (and, for the
normalisation alone, `preprocessing.normalize`).
"""

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Embedding values are of magnitude ~0.1-3; the runtimes (XLA, TF-XLA, TFLite's XNNPACK,
# onnxruntime) sum the convolutions' float32 products in different orders, ~1e-6 apart
# (measured <= 2e-6 for every format, TFLite included: it runs the same float32 graph, no
# quantisation). 1e-4, the bound, leaves 50x margin.
TOLERANCE = 1e-4
HEIGHT, WIDTH = 32, 16


def _config():
    sys.path.insert(0, os.path.join(ROOT, "configs"))
    try:
        import synthetic  # pylint: disable=import-outside-toplevel
    finally:
        sys.path.pop(0)
    return synthetic.get_config("quick")


NORMALIZATION = {
    "rgb": {"scale": 255.0, "mean": [0.41, 0.38, 0.39], "std": [0.19, 0.2, 0.21], "center": False},
    # Depth: replicated to 3 channels (shared layout), person distance subtracted (centred).
    "depth": {"scale": 65535.0, "mean": [0.02] * 3, "std": [0.025] * 3, "center": True},
}


def write_run(workdir, seed: int, step: int = 7):
    """A run directory in the trainer's format, random weights and BatchNorm statistics."""
    import jax
    import orbax.checkpoint as ocp

    from jaxreid import models

    config = _config()
    num_classes = 12
    model = models.model_from_config(config, num_classes)
    key = jax.random.key(seed)
    variables = model.init(
        {"params": key, "dropout": key}, np.zeros((1, HEIGHT, WIDTH, 3), np.float32), train=False
    )
    variables = jax.tree.map(np.asarray, dict(variables))
    params = variables.pop("params")
    rng = np.random.default_rng(seed)

    def perturb(path, x):  # BatchNorm running statistics that are not the identity
        name = jax.tree_util.keystr(path)
        if name.endswith("['var']"):
            return rng.uniform(0.5, 2.0, x.shape).astype(x.dtype)
        return (rng.standard_normal(x.shape) * 0.1).astype(x.dtype)

    model_state = jax.tree_util.tree_map_with_path(perturb, variables)
    os.makedirs(workdir, exist_ok=True)
    manager = ocp.CheckpointManager(os.path.join(workdir, "best"))
    state = {"step": np.int32(step), "params": params, "model_state": model_state, "opt_state": {}}
    manager.save(step, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    manager.close()
    with open(os.path.join(workdir, "run.json"), "w") as f:
        json.dump(
            {
                "config": config.to_dict(),
                "num_classes": num_classes,
                "class_person_ids": list(range(num_classes)),
                "image_shape": [HEIGHT, WIDTH, 3],
                "normalization": NORMALIZATION,
            },
            f,
        )
    return workdir


def camera_images(seed=0):
    """7 RGB uint8 and 7 depth uint16 images; depth with holes (0), one image all holes and
    one with a single valid pixel (the centring's edge cases)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (7, HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = rng.integers(400, 9000, (7, HEIGHT, WIDTH, 1)).astype(np.uint16)
    depth[rng.random(depth.shape) < 0.2] = 0
    depth[3] = 0
    depth[5] = 0
    depth[5, 4, 7] = 2500
    return {"rgb": rgb, "depth": depth}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from jaxreid import inference

    workdir = write_run(str(tmp_path_factory.mktemp("run")), seed=0)
    return inference.load_run(workdir)


@pytest.fixture(scope="module")
def images():
    return camera_images()


def test_normalize_graph_equals_preprocessing():
    """Every input layout, centred and not, against the NumPy normalisation of the trainer."""
    import jax

    from jaxreid import export
    from jaxreid.data import preprocessing

    data = camera_images(1)
    for layout in preprocessing.INPUT_LAYOUTS:
        channels = preprocessing.modality_channels(layout)
        for slot, (modality, center) in enumerate([("rgb", False), ("depth", True)]):
            norm = preprocessing.Normalization(
                255.0 if modality == "rgb" else 65535.0,
                (0.3,) * channels,
                (0.2,) * channels,
                center,
            )
            want = preprocessing.normalize(data[modality], norm, layout, slot)
            graph = functools.partial(export.normalize_graph, norm=norm, layout=layout, slot=slot)
            got = jax.jit(graph)(data[modality])
            # float32: the same operations; the luma dot product may round differently.
            np.testing.assert_allclose(np.asarray(got), want, atol=2e-5, err_msg=layout)


def _tf_embed(path, images):
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    return serve(images=tf.constant(images))["embeddings"].numpy()


def test_saved_model(run, images, tmp_path):
    """RGB only: the depth graph goes through the same SavedModel in test_tflite (which
    converts it) and is run by onnxruntime below; each TensorFlow export costs ~10 s."""
    import tensorflow as tf

    from jaxreid import export

    for modality, x in [("rgb", images["rgb"])]:
        path = export.export_model(run, modality, "saved_model", tmp_path)
        want = run.embed(x, modality)
        for batch in (1, 7):
            got = _tf_embed(path, x[:batch])
            assert got.shape == (batch, run.embedding_dim) and got.dtype == np.float32
            np.testing.assert_allclose(got, want[:batch], atol=TOLERANCE, rtol=0)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        # Wrong dtype or size: TensorFlow's InvalidArgumentError naming what was expected.
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected to be a u"):
            serve(images=tf.constant(x.astype(np.float32)))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"is not compatible with"):
            serve(images=tf.constant(x[:, :16]))


def _tflite_embed(interpreter, images):
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite(run, images, tmp_path):
    import tensorflow as tf

    from jaxreid import export

    for modality, x in images.items():
        path = export.export_model(run, modality, "tflite", tmp_path)
        interpreter = tf.lite.Interpreter(model_path=path)
        detail = interpreter.get_input_details()[0]
        assert list(detail["shape_signature"]) == [-1, HEIGHT, WIDTH, x.shape[-1]]
        assert detail["dtype"] == x.dtype
        want = run.embed(x, modality)
        for batch in (1, 7):
            got = _tflite_embed(interpreter, x[:batch])
            np.testing.assert_allclose(got, want[:batch], atol=TOLERANCE, rtol=0)
        with pytest.raises(ValueError, match="Got value of type FLOAT32 but expected type"):
            interpreter.set_tensor(detail["index"], x.astype(np.float32))
        with pytest.raises(ValueError, match="Dimension mismatch"):
            interpreter.set_tensor(detail["index"], x[:, :16])


def test_onnx_of_a_distillation_pair_from_the_command_line(run, images, tmp_path):
    """`python -m jaxreid.export` on step1/ + step2/: RGB from F, depth from G (different
    weights), each run by onnxruntime; the JSON sidecar describes the graph."""
    import onnxruntime

    from jaxreid import inference

    pair_dir = tmp_path / "pair"
    os.makedirs(pair_dir)
    os.symlink(run.workdir, pair_dir / "step1")
    write_run(str(pair_dir / "step2"), seed=1, step=9)
    out = tmp_path / "onnx"
    command = [sys.executable, "-m", "jaxreid.export", f"--workdir={pair_dir}", "--format=onnx"]
    done = subprocess.run(
        [*command, f"--out={out}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "XLA_FLAGS": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pair = inference.load_distillation_run(pair_dir)
    for modality, x in images.items():
        session = onnxruntime.InferenceSession(
            str(out / f"{modality}.onnx"), providers=["CPUExecutionProvider"]
        )
        (spec,) = session.get_inputs()
        assert spec.name == "images" and spec.shape[1:] == [HEIGHT, WIDTH, x.shape[-1]]
        want = pair.embed(x, modality)
        other = (pair.step2 if modality == "rgb" else pair.step1).embed(x, modality)
        assert np.abs(want - other).max() > 100 * TOLERANCE  # the two networks differ
        for batch in (1, 7):
            got = session.run(None, {"images": x[:batch]})[0]
            np.testing.assert_allclose(got, want[:batch], atol=TOLERANCE, rtol=0)
        with pytest.raises(Exception, match="Unexpected input data type"):
            session.run(None, {"images": x.astype(np.float32)})
        with pytest.raises(Exception, match="Got invalid dimensions"):
            session.run(None, {"images": x[:, :16]})
        with open(out / f"{modality}.json") as f:
            meta = json.load(f)
        network = pair.networks[modality]
        assert meta["modality"] == modality and meta["file"] == f"{modality}.onnx"
        assert meta["input"]["shape"] == [None, HEIGHT, WIDTH, x.shape[-1]]
        assert meta["input"]["dtype"] == x.dtype.name
        assert meta["normalization"]["mean"] == NORMALIZATION[modality]["mean"]
        assert meta["embedding_size"] == want.shape[1] and meta["metric"] == "euclidean"
        assert meta["source"]["workdir"] == network.workdir
        assert meta["source"]["step"] == (7 if modality == "rgb" else 9)


def test_export_does_not_load_tensorflow_on_import():
    code = "import sys, jaxreid.export; assert 'tensorflow' not in sys.modules"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
