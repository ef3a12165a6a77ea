"""jaxreid.inference (load a run, embed, galleries) and the jaxreid.search_cli command line.

The session's quick synthetic run (conftest.quick_run, 8 host devices); the
reference embeddings are the trainer's own (`training.engine.Engine.embed` on the restored TrainState).
"""

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from commands import run_module
from reduction_order import sum_rtol


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Equal up to the order of float32 sums: other batch shapes (the trainer pads its last batch
# to the eval batch size) may sum a convolution's terms in another order. Bound: the longest
# sum of the width-8 quick network, layer4's 3x3x64 = 576 terms, differs by at most
# sum_rtol(576) = 6.9e-5 of its terms' magnitudes (reduction_order.py), taken here as the
# largest feature value (measured: <= 3.4e-5 absolute on BNNeck features of magnitude <= 16).
# A wrong checkpoint, normalisation or feature is off by O(1).
ROUNDING = sum_rtol(576)


def close(want):
    return dict(atol=ROUNDING * float(np.abs(want).max()), rtol=0)


@pytest.fixture(scope="module")
def trained(quick_run):
    """(workdir, config, results, {modality: test ImageSet}) of the session's quick run."""
    from jaxreid.data import sources

    workdir, config, results = quick_run
    test_sets = {m: sources.load_image_set(config.data, m, "test") for m in config.data.modalities}
    return workdir, config, results, test_sets


@pytest.fixture(scope="module")
def trainer_embeddings(trained):
    """{modality: [N, D]} of the test images by the trainer's own embedding code, from the
    best checkpoint restored as the trainer restores it (the whole TrainState)."""
    import orbax.checkpoint as ocp

    from jaxreid.training.engine import Engine
    from jaxreid.training.state import abstract

    workdir, config, results, test_sets = trained
    with open(os.path.join(workdir, "run.json")) as f:
        info = json.load(f)
    engine = Engine(config, info["num_classes"], info["image_shape"])
    state = engine.init_state()
    manager = ocp.CheckpointManager(os.path.join(workdir, "best"))
    state = manager.restore(results["step"], args=ocp.args.StandardRestore(abstract(state)))
    from jaxreid.data import preprocessing

    norms = {
        m: preprocessing.Normalization(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in n.items()}
        )
        for m, n in info["normalization"].items()
    }
    return {m: engine.embed(state.variables, s, norms[m]) for m, s in test_sets.items()}


@pytest.fixture(scope="module")
def model(trained):
    from jaxreid import inference

    return inference.load_run(trained[0])


def test_embeddings_equal_the_trainers(trained, trainer_embeddings, model):
    _, config, results, test_sets = trained
    assert model.step == results["step"]
    assert model.modalities == tuple(config.data.modalities)
    for modality, image_set in test_sets.items():
        got = model.embed(image_set.images, modality)
        want = trainer_embeddings[modality]
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, **close(want))
        # Odd sizes, a batch smaller than the 8 devices, a list of images: same rows.
        some = model.embed(list(image_set.images[:13]), modality, batch_size=3)
        np.testing.assert_allclose(some, want[:13], **close(want))


def test_embeds_the_feature_the_run_ranks(trained, model):
    """Inference returns the feature config.eval.feature names, as the trainer's evaluation
    (training.steps.embed_step) ranks it: the main job's pooled backbone features, and the
    head's embedding (the BNNeck feature) with eval.feature=''."""
    assert model.config.eval.feature == "pooled"
    config = copy.deepcopy(model.config)
    config.eval.feature = ""
    head = dataclasses.replace(model, config=config)
    images = trained[3]["rgb"].images[:5]
    embedding, intermediates = model.model.apply(
        model.variables,
        model.preprocess(images, "rgb"),
        train=False,
        modality=model.modalities.index("rgb"),
    )
    pooled, want_embedding = np.asarray(intermediates["pooled"]), np.asarray(embedding)
    got, got_embedding = model.embed(images, "rgb"), head.embed(images, "rgb")
    assert got.shape == pooled.shape and got_embedding.shape == want_embedding.shape
    # Two different features (the BNNeck feature of the quick run has the same size).
    assert np.abs(got - got_embedding).max() > 0.1
    np.testing.assert_allclose(got, pooled, **close(pooled))
    np.testing.assert_allclose(got_embedding, want_embedding, **close(want_embedding))


def test_other_device_count(trained, trainer_embeddings):
    """Trained on 8 devices, restored on 3: batches of 7 are padded to multiples of 3."""
    import jax

    from jaxreid import inference

    _, _, _, test_sets = trained
    three = inference.load_run(trained[0], devices=jax.devices()[:3])
    assert three.mesh.size == 3
    leaf = jax.tree.leaves(three.variables)[0]
    assert len(leaf.sharding.device_set) == 3 and leaf.sharding.is_fully_replicated
    got = three.embed(test_sets["depth"].images[:7], "depth", batch_size=4)
    np.testing.assert_allclose(
        got, trainer_embeddings["depth"][:7], **close(trainer_embeddings["depth"])
    )


def test_embed_files_reads_8_and_16_bit_pngs(trained, trainer_embeddings, model, tmp_path):
    from PIL import Image

    from jaxreid import inference

    _, _, _, test_sets = trained
    rgb, depth = test_sets["rgb"].images[:5], test_sets["depth"].images[:5]
    assert depth.dtype == np.uint16 and depth.max() > 255  # really 16-bit
    rgb_paths, depth_paths = [], []
    for i in range(5):
        rgb_paths.append(str(tmp_path / f"rgb_{i}.png"))
        Image.fromarray(rgb[i]).save(rgb_paths[-1])
        depth_paths.append(str(tmp_path / f"depth_{i}.png"))
        Image.fromarray(depth[i, ..., 0]).save(depth_paths[-1])
    read = inference.read_image(depth_paths[0])
    assert read.dtype == np.uint16 and read.shape == depth[0].shape
    np.testing.assert_array_equal(read, depth[0])
    np.testing.assert_allclose(
        model.embed_files(rgb_paths, "rgb"),
        trainer_embeddings["rgb"][:5],
        **close(trainer_embeddings["rgb"]),
    )
    np.testing.assert_allclose(
        model.embed_files(depth_paths, "depth"),
        trainer_embeddings["depth"][:5],
        **close(trainer_embeddings["depth"]),
    )


def test_resize_matches_the_input_pipeline():
    """`resize_images` against tf.image.resize(antialias=True) + rounding, which
    `jaxreid.data.sources.load_image_set` applies to the training images."""
    import tensorflow as tf

    from jaxreid.inference import resize_images

    rng = np.random.default_rng(0)
    cases = [
        ((61, 37, 3), np.uint8),
        ((20, 9, 1), np.uint16),
        ((97, 70, 1), np.uint16),
        ((33, 16, 3), np.uint8),
    ]
    for (height, width, channels), dtype in cases:
        images = rng.integers(
            0, np.iinfo(dtype).max, size=(2, height, width, channels), dtype=dtype
        )
        want = tf.image.resize(images, (32, 16), antialias=True)
        want = tf.cast(
            tf.clip_by_value(tf.round(want), 0.0, float(np.iinfo(dtype).max)), dtype
        ).numpy()
        got = resize_images(images, (32, 16))
        assert got.dtype == dtype and got.shape == (2, 32, 16, channels)
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        # float32 (TF) vs float64 (here) may round a value at .5 the other way.
        assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, (height, width)
    # Same size: unchanged.
    same = rng.integers(0, 255, size=(1, 32, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_images(same, (32, 16)), same)


def test_resize_weights_hand_worked():
    """Halving 4 pixels: output 0 samples at x = 0.5 with a triangle of half-width 2:
    weights 0.75, 0.75, 0.25 at pixels 0, 1, 2 (pixel -1 falls outside), normalised."""
    from jaxreid.inference import resize_images

    row = np.array([[0.0, 4.0, 8.0, 12.0]]).reshape(1, 1, 4, 1)
    got = resize_images(row, (1, 2))[0, 0, :, 0]
    # float64 resize weights vs decimal fractions: rounding only (default rtol 1e-7).
    np.testing.assert_allclose(
        got, [(0.75 * 0 + 0.75 * 4 + 0.25 * 8) / 1.75, (0.25 * 4 + 0.75 * 8 + 0.75 * 12) / 1.75]
    )


def _brute_force(queries, gallery, metric):
    """[Q, G] float64 distances: Euclidean, or cosine 1 - cos."""
    q, g = queries.astype(np.float64), gallery.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        return 1.0 - q @ g.T
    return np.sqrt(((q[:, None] - g[None]) ** 2).sum(-1))


def test_gallery_search_against_numpy(trained, model, tmp_path):
    """By default a gallery ranks by the run's own metric (the quick main job's: Euclidean);
    an explicit metric overrides it."""
    _, _, _, test_sets = trained
    depth, rgb = test_sets["depth"], test_sets["rgb"]
    assert model.metric == model.config.eval.metric == "euclidean"
    queries = model.embed(rgb.images[:7], "rgb")
    for metric in (None, "cosine"):
        gallery = model.build_gallery(
            depth.images,
            "depth",
            ids=depth.person_ids,
            cams=depth.camera_ids,
            filenames=depth.filenames,
            metric=metric,
        )
        want = metric or "euclidean"
        assert gallery.metric == want
        distances, indices = gallery.search(queries, k=5)
        brute = _brute_force(queries, gallery.embeddings, want)
        np.testing.assert_array_equal(indices, np.argsort(brute, axis=1, kind="stable")[:, :5])
        # float32 embeddings' distances vs float64; cosine 1 - cos cancels: ~1e-6, bound 1e-4.
        np.testing.assert_allclose(distances, np.sort(brute, axis=1)[:, :5], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(gallery.ids, depth.person_ids)
    assert set(gallery.modality) == {"depth"}
    path = gallery.save(tmp_path / "g.npz")
    from jaxreid.search import Gallery

    np.testing.assert_array_equal(Gallery.load(path).embeddings, gallery.embeddings)


def test_checkpoint_selection(trained):
    from jaxreid import inference

    workdir, config, results, _ = trained
    latest = inference.load_run(workdir, checkpoint="latest")
    assert latest.step == config.num_train_steps
    first = inference.load_run(workdir, checkpoint=config.checkpoint_every_steps)
    assert first.step == config.checkpoint_every_steps
    with pytest.raises(FileNotFoundError, match="no checkpoint of step 7"):
        inference.load_run(workdir, checkpoint=7)
    with pytest.raises(ValueError, match="expected 'best', 'latest'"):
        inference.load_run(workdir, checkpoint="newest")
    with pytest.raises(FileNotFoundError, match="run.json"):
        inference.load_run(os.path.join(workdir, "best"))


def test_run_json_that_does_not_describe_the_checkpoint(trained, tmp_path):
    import shutil

    from jaxreid import inference

    copy = tmp_path / "run"
    shutil.copytree(trained[0], copy)
    info = json.loads((copy / "run.json").read_text())
    info["config"]["model"]["width"] *= 2  # twice the checkpoint's channels
    (copy / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"does not match the network described by run.json"):
        inference.load_run(copy)


def test_wrong_inputs_fail_with_a_clear_message(trained, model):
    _, _, _, test_sets = trained
    depth8 = (test_sets["depth"].images[:2] // 256).astype(np.uint8)
    with pytest.raises(ValueError, match=r"depth images are uint8.*65535"):
        model.embed(depth8, "depth")
    with pytest.raises(ValueError, match=r"'infrared' is not one this model embeds"):
        model.embed(test_sets["rgb"].images[:2], "infrared")


def test_float_images_in_0_1_warn_that_they_are_nearly_black(trained, model):
    """A run trained on uint8 RGB takes float images in 0-255: [0, 1] floats (what
    `img / 255.` or many loaders give) are warned about, named with the fix; float images in
    0-255 are the uint8 images' values and embed as they do, without a warning."""
    import warnings

    from jaxreid.inference import ImageScaleWarning

    _, _, _, test_sets = trained
    rgb = test_sets["rgb"].images[:3]
    unit = rgb.astype(np.float32) / 255.0
    with pytest.warns(ImageScaleWarning, match=r"rgb images are float32 with values in \[.*"
                      r"up to 255: they are embedded as nearly black.*Multiply them by 255"):
        model.embed(unit, "rgb")
    with pytest.warns(ImageScaleWarning):  # a list of images of different sizes too
        model.embed([unit[0], unit[1, :20]], "rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageScaleWarning)
        got = model.embed(rgb.astype(np.float32), "rgb")
        model.embed(test_sets["depth"].images[:2], "depth")
    # Integer-valued floats resize and normalise exactly as the uint8 images.
    np.testing.assert_array_equal(got, model.embed(rgb, "rgb"))


def test_distillation_pair_dispatches_by_modality(trained, model, tmp_path):
    """Two step directories (here both the trained run): RGB goes to Step I's network,
    depth to Step II's."""
    from jaxreid import inference

    workdir, _, _, test_sets = trained
    os.symlink(workdir, tmp_path / "step1")
    # Step II's copy ranks by L1 (its run.json): the pair ranks as Step II's test did.
    shutil.copytree(workdir, tmp_path / "step2")
    run_json = tmp_path / "step2" / "run.json"
    info = json.loads(run_json.read_text())
    info["config"]["eval"]["metric"] = "l1"
    run_json.write_text(json.dumps(info))
    pair = inference.load_distillation_run(tmp_path)
    assert pair.networks["rgb"] is pair.step1 and pair.networks["depth"] is pair.step2
    assert (pair.step1.metric, pair.metric) == ("euclidean", "l1")
    for modality, image_set in test_sets.items():
        # The same network and images through two wrappers: XLA fusion rounding only (~1e-7).
        np.testing.assert_allclose(
            pair.embed(image_set.images[:4], modality),
            model.embed(image_set.images[:4], modality),
            atol=1e-6,
        )
    swapped = inference.load_distillation_run(
        tmp_path, modalities={"depth": "step1", "rgb": "step2"}
    )
    assert swapped.networks["depth"] is swapped.step1
    with pytest.raises(ValueError, match="expected one of"):
        inference.load_distillation_run(tmp_path, modalities={"rgb": "step3"})


def _write_folder(test_sets, root):
    """Gallery folder <root>/depth/<id>/<n>.png (16-bit) and RGB queries; returns paths."""
    from PIL import Image

    depth = test_sets["depth"]
    for i in range(len(depth)):
        folder = root / "depth" / f"{depth.person_ids[i]:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(depth.images[i, ..., 0]).save(folder / f"{i:04d}.png")
    rgb = test_sets["rgb"]
    query = root / "queries" / f"{rgb.person_ids[0]:04d}" / "q.png"
    query.parent.mkdir(parents=True)
    Image.fromarray(rgb.images[0]).save(query)
    return str(root / "depth"), str(query)


def test_cli_prints_and_draws_the_ranked_list(trained, model, tmp_path):
    """The command line on a folder of PNGs, run on 1 device (the run trained on 8)."""
    from PIL import Image

    _, _, _, test_sets = trained
    gallery_dir, query = _write_folder(test_sets, tmp_path)
    out = tmp_path / "ranked.png"
    k = 6
    done = run_module(
        "jaxreid.search_cli",
        f"--run={trained[0]}",
        f"--query={query}",
        "--query_modality=rgb",
        f"--gallery={gallery_dir}",
        "--gallery_modality=depth",
        f"--k={k}",
        f"--out={out}",
        r"--pattern=(?P<id>\d{4})/[^/]+\.png$",
        f"--save_gallery={tmp_path / 'g.npz'}",
        timeout=300,
    )
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\S+)", done.stdout, re.M)
    assert [int(r[0]) for r in rows] == list(range(1, k + 1))
    # Reference: this process's embeddings (8 devices) and a NumPy ranking by the run's
    # metric (the quick run's: cosine distance 1 - cos, on its BNNeck features).
    depth = test_sets["depth"]
    gallery = model.embed(depth.images, "depth").astype(np.float64)
    q = model.embed(test_sets["rgb"].images[:1], "rgb")[0].astype(np.float64)
    if model.config.eval.metric == "cosine":
        brute = 1 - gallery @ q / (np.linalg.norm(gallery, axis=1) * np.linalg.norm(q))
    else:
        assert model.config.eval.metric == "euclidean"
        brute = np.sqrt(((gallery - q) ** 2).sum(-1))
    order = np.argsort(brute, kind="stable")[:k]
    # Printed with 4 decimals (±5e-5) from 1-device embeddings (8 here): float32 reduction
    # order, ~1e-6 relative to the distance (Euclidean distances of ~30 on the main job).
    np.testing.assert_allclose([float(r[1]) for r in rows], brute[order], rtol=1e-5, atol=1e-4)
    assert [int(r[2]) for r in rows] == depth.person_ids[order].tolist()
    assert [os.path.basename(r[3]) for r in rows] == [f"{i:04d}.png" for i in order]
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size == ((k + 1) * 100, 240)
    assert os.path.exists(tmp_path / "g.npz")


def test_cli_reports_a_missing_run(tmp_path):
    done = run_module(
        "jaxreid.search_cli",
        f"--run={tmp_path}",
        "--query=q.png",
        "--query_modality=rgb",
        f"--gallery={tmp_path}",
        timeout=120,
        expect_ok=False,
    )
    assert done.returncode != 0
    assert "holds neither run.json" in done.stderr


def test_inference_does_not_import_tensorflow():
    code = (
        "import sys, jaxreid.inference, jaxreid.search_cli; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_evaluate_command_re_tests_another_checkpoint_and_metric(trained):
    """`python -m jaxreid.evaluate` with checkpoint 'latest' and cosine distance: equals the
    protocol on inference's embeddings of that checkpoint; the training results stay as they
    were; a new results file and TensorBoard events are written."""
    from jaxreid import evaluate, evaluation, inference

    workdir, config, _, test_sets = trained
    before = {
        f: open(os.path.join(workdir, f), "rb").read()
        for f in ("results.json", "results.md", "run.json")
    }
    status = evaluate.main(
        [
            "jaxreid.evaluate",
            f"--workdir={workdir}",
            "--checkpoint=latest",
            "--config.eval.metric=cosine",
        ]
    )
    assert status == 0
    after = {f: open(os.path.join(workdir, f), "rb").read() for f in before}
    assert after == before
    with open(os.path.join(workdir, "results-latest-metric_cosine.json")) as f:
        written = json.load(f)
    assert written["step"] == config.num_train_steps and written["eval"]["metric"] == "cosine"
    assert os.path.exists(os.path.join(workdir, "results-latest-metric_cosine.md"))
    assert any(
        n.startswith("events.out")
        for n in os.listdir(
            os.path.join(workdir, "eval", "results-latest-metric_cosine".removeprefix("results-"))
        )
    )

    model = inference.load_run(workdir, checkpoint="latest")
    features = {
        m: dict(
            feats=model.embed(s.images, m),
            ids=s.person_ids,
            cams=s.camera_ids,
            frames=s.frame_ids,
        )
        for m, s in test_sets.items()
    }
    ev = config.eval
    want = evaluation.evaluate_modality_pairs(
        features,
        protocol=ev.protocol,
        seed=ev.seed,
        repeats=ev.repeats,
        max_queries_per_id=ev.max_queries_per_id,
        metric="cosine",
    )
    for pair, metrics in want.items():
        # A rank swap moves mAP by >= 1e-4: 1e-6 allows none, only the float64 mean's order.
        np.testing.assert_allclose(written["test"][pair]["mAP"], metrics["mAP"], atol=1e-6)
    # Only evaluation settings may change.
    assert (
        evaluate.main(["jaxreid.evaluate", f"--workdir={workdir}", "--config.model.width=4"]) == 2
    )
