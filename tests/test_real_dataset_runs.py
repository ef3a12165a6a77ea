"""The real-dataset configs train and test end to end on the builders' dummy data.

The dummy data has a handful of identities, so the figures mean nothing; what is checked is
that the split handling (official val split, cross-validation folds), the input pipeline and
the dataset-specific test protocols run through `train_and_evaluate`.
"""

import os

import numpy as np
import pytest

from jaxreid.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(name, arg, data_dir, manual_dir):
    cfg = load_config(f"configs/{name}.py:{arg}")
    cfg.data.data_dir = data_dir
    cfg.data.manual_dir = os.path.join(ROOT, "datasets", manual_dir)
    cfg.batch.num_identities = 2
    cfg.num_train_steps = 4
    cfg.eval_every_steps = 4
    return cfg


def test_sysu_quick_reports_the_sysu_protocol(tmp_path):
    from jaxreid import train

    cfg = config("sysu", "quick", str(tmp_path / "tfds"), "sysu_mm01/dummy_data")
    results = train.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert set(results["test"]) == {"all_single", "indoor_single"}
    for setting in results["test"].values():
        assert (
            0.0 <= setting["mAP"] <= 1.0 and setting["num_trials"] == len(setting["trials"]) == 10
        )
    assert "Indoor-search single-shot" in (tmp_path / "run" / "results.md").read_text()


def test_biwi_quick_holds_out_a_fold_of_the_design_set(tmp_path):
    from jaxreid import train
    from jaxreid.data import sources
    from jaxreid.datasets import splits

    cfg = config("biwi", "quick", str(tmp_path / "tfds"), "biwi_rgbd_id/dummy_data/distributed")
    cfg.data.num_val_ids = 1
    loaded = sources.load_splits(cfg.data)
    design = np.unique(
        np.concatenate(
            [s.person_ids for s in loaded["train"].values()]
            + [s.person_ids for s in loaded["val"].values()]
        )
    )
    fold = splits.cross_validation_folds(design.tolist(), num_folds=3, seed=0, num_val_ids=1)[0]
    for modality in ("rgb", "depth"):
        assert set(loaded["val"][modality].person_ids) == set(fold["val"])
        assert not set(loaded["train"][modality].person_ids) & set(fold["val"])
    results = train.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert set(results["test"]) == {
        "Q:rgb G:depth",
        "Q:depth G:rgb",
        "Q:rgb G:rgb",
        "Q:depth G:depth",
    }


@pytest.mark.parametrize(
    "arg,manual,settings",
    [("quick", "sysu_mm01/dummy_data", {"all_single", "indoor_single"})],
)
def test_agw_config_runs_on_the_builders_tree(tmp_path, arg, manual, settings):
    """configs/agw.py (the AGW network: two-stream stem, non-local blocks, GeM, BNNeck, WRT,
    the 'agw' schedule) trains and tests with SYSU-MM01's own protocol. (RegDB's dummy tree
    has 2 design identities: too few to train on one and validate on the other.)"""
    from jaxreid import train

    cfg = config("agw", arg, str(tmp_path / "tfds"), manual)
    cfg.batch.images_per_identity = 4  # 2 per modality: the dummy trees are small
    # Two identities of a few images each from random weights: at the quick config's lr the
    # RGB features reach ~1e12 in 4 steps (and overflow in evaluation); this is a wiring test.
    cfg.optim.learning_rate = 1e-3
    results = train.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert cfg.model.head == "bnneck" and cfg.model.shared_from == "layer1"
    if settings:
        assert set(results["test"]) == settings
    for result in results["test"].values():
        assert 0.0 <= result["mAP"] <= 1.0
    # jaxreid.inference sends each modality through its own stem (the two-stream network
    # needs to be told the modality; it raised before): finite features of the run's size.
    from jaxreid import inference

    model = inference.load_run(str(tmp_path / "run"))
    images = np.random.default_rng(0).integers(0, 256, (3, *model.image_shape[:2], 1), np.uint8)
    visible = model.embed(np.repeat(images, 3, axis=-1), "rgb")
    infrared = model.embed(images, "infrared")
    assert visible.shape == infrared.shape and np.isfinite(visible).all()
    assert np.abs(visible - infrared).max() > 1e-3
