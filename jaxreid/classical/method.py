"""The conventional baselines as a run: features (LOMO | WHOS) x matching (Euclidean | XQDA).

    python -m jaxreid.experiments --grid=configs/grids/classical.py:synthetic --workdir=/tmp/c

`train_and_evaluate(config, workdir)` is what the experiment runner (and `jaxreid.main`)
calls for `config.method = 'classical'`: it loads the dataset at `config.classical.image_size`,
extracts the features of the training and test images of every modality, learns XQDA on the
training identities (if `config.classical.matching == 'xqda'`), tests with the networks'
protocol dispatch (`config.eval.test_protocol`, any of them; by default Hafner 2018 §4.3.1:
single-gallery-shot, 10 repeats, every query/gallery modality pair) and writes results.json /
results.md like the networks do (Hafner 2018 §5.3, Tables 17 and 18).

What each extractor sees (Hafner 2018 §5.3: "the same features will be extracted for both
modalities"; the thesis does not say how depth was encoded): `extractor_input`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxreid import workdir as workdir_lib
from jaxreid.classical import lomo as lomo_lib
from jaxreid.classical import whos as whos_lib
from jaxreid.classical import xqda as xqda_lib
from jaxreid.config import choices
from jaxreid.evaluation import experiment as evaluation

# config.classical.features: the extractor (lomo: Liao 2015 §3; whos: Lisanti 2015, the descriptor section).
FEATURES = {"lomo": lomo_lib.lomo, "whos": whos_lib.whos}
FEATURE_NAMES = choices.CLASSICAL_FEATURES
choices.check_registry(FEATURES, FEATURE_NAMES, "jaxreid.classical.method.FEATURES")
# config.classical.matching: 'euclidean' (features compared directly) or 'xqda' (Liao 2015 §4).
MATCHINGS = choices.CLASSICAL_MATCHINGS
# config.classical.xqda_solver: 'svd' (the published XQDA.m) | 'eig' (Liao 2015 Eq. 14).
XQDA_SOLVERS = xqda_lib.SOLVERS
METHOD_NAMES = {"lomo": "LOMO", "whos": "WHOS", "euclidean": "Euclidean", "xqda": "XQDA"}


def check_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the config.classical key whose value is not allowed."""
    c = config.classical
    if c.features not in FEATURES:
        raise ValueError(
            f"config.classical.features={c.features!r}; expected one of {tuple(FEATURES)}."
        )
    if c.matching not in MATCHINGS:
        raise ValueError(f"config.classical.matching={c.matching!r}; expected one of {MATCHINGS}.")
    h, w = c.image_size
    if c.features == "lomo" and (h < lomo_lib.BLOCK_SIZE * 4 or w < lomo_lib.BLOCK_SIZE * 4):
        raise ValueError(
            f"config.classical.image_size={tuple(c.image_size)}: LOMO's three scales need at "
            f"least {4 * lomo_lib.BLOCK_SIZE} pixels each way (published: {lomo_lib.IMAGE_SIZE})."
        )
    if c.features == "whos" and (h % (2 * whos_lib.STRIPES) or w % 8 or w < 24):
        raise ValueError(
            f"config.classical.image_size={tuple(c.image_size)}: WHOS needs a height that is a "
            f"multiple of {2 * whos_lib.STRIPES} and a width that is a multiple of 8, at least "
            f"24 (two HOG cells in the inner window; the authors': {whos_lib.IMAGE_SIZE})."
        )
    if c.batch_size < 1:
        raise ValueError(f"config.classical.batch_size={c.batch_size}; expected >= 1.")


def extractor_input(images: np.ndarray) -> np.ndarray:
    """[N, H, W, C] uint8/uint16 images of one modality -> [N, H, W, 3] float32 in [0, 255].

    - RGB (3 channels, uint8): unchanged.
    - Infrared / thermal (1 channel, uint8): replicated to 3 channels (grey RGB).
    - Depth stored as 8 bits (RobotPKU, BIWI's processed layout): replicated as stored.
    - Depth stored as uint16 millimetres (BIWI as distributed, synthetic): per image, the valid (non-zero) depths are
      mapped linearly to 8 bits, nearest = 255 and farthest = 1, holes stay 0; then
      replicated to 3 channels. Choice: so that the person (nearest) is bright and the
      contrast does not depend on where the person stood; LOMO's HSV then sees grey
      (H = S = 0, V = depth) and its SILTP and WHOS's HOG see the depth relief.
    """
    images = np.asarray(images)
    x = images.astype(np.float32)
    if images.shape[-1] == 1 and images.dtype == np.uint16:
        valid = x > 0
        big = np.where(valid, x, np.inf).reshape(len(x), -1).min(axis=1)
        small = np.where(valid, x, -np.inf).reshape(len(x), -1).max(axis=1)
        near = np.where(np.isfinite(big), big, 0.0)[:, None, None, None]
        far = np.where(np.isfinite(small), small, 0.0)[:, None, None, None]
        span = np.maximum(far - near, 1.0)
        x = np.where(valid, 255.0 - 254.0 * (x - near) / span, 0.0)
    elif np.issubdtype(images.dtype, np.integer) and images.dtype != np.uint8:
        x = x * (255.0 / np.iinfo(images.dtype).max)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    if x.shape[-1] != 3:
        raise ValueError(f"Images with {x.shape[-1]} channels; expected 1 or 3.")
    return np.round(x).astype(np.float32)


def extract_features(extract, images: np.ndarray, batch_size: int) -> np.ndarray:
    """[N, H, W, C] stored images -> [N, D] float32 features, `batch_size` at a time.

    The last batch is padded to `batch_size` (one compiled shape) and the padding dropped
    from the output; no image is left out.
    """
    out = []
    for start in range(0, len(images), batch_size):
        batch = extractor_input(images[start : start + batch_size])
        n = len(batch)
        if n < batch_size:
            batch = np.concatenate(
                [batch, np.zeros((batch_size - n, *batch.shape[1:]), np.float32)]
            )
        out.append(np.asarray(extract(jnp.asarray(batch)))[:n])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def method_name(config: ml_collections.ConfigDict) -> str:
    """'LOMO, XQDA' etc. (the row names of Hafner 2018 Tables 17/18)."""
    c = config.classical
    return f"{METHOD_NAMES[c.features]}, {METHOD_NAMES[c.matching]}"


def _limit_per_id(image_set, limit: int, seed: int):
    """At most `limit` images per identity (0 = all), drawn with `seed`."""
    if not limit:
        return image_set
    rng = np.random.default_rng(seed)
    keep = []
    for pid in np.unique(image_set.person_ids):
        idx = np.flatnonzero(image_set.person_ids == pid)
        keep.append(np.sort(rng.permutation(idx)[:limit]) if len(idx) > limit else idx)
    return image_set.select(np.concatenate(keep))


def _concat(a, b):
    """The images of ImageSets `a` and `b` (same modality) in one ImageSet."""
    fields = ("images", "person_ids", "camera_ids", "frame_ids", "file_index", "filenames")
    return dataclasses.replace(
        a, **{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in fields}
    )


def evaluate_features(config, sets, feats, query_sets=None, query_feats=None) -> dict:
    """The final test of `config.eval.test_protocol` on ready features, by the networks' one
    protocol dispatch (`jaxreid.evaluation.experiment.test`, every protocol of TEST_PROTOCOLS).

    Features are ranked by Euclidean distance whatever config.eval.metric says: XQDA's
    embedding makes it the learned metric (Liao 2015 Eq. 10), and LOMO / WHOS with
    'euclidean' matching are compared by it by definition (Hafner 2018 §5.3).

    Args:
      sets: {modality: ImageSet} of the test split; feats: {modality: [N, D] float32} in
        their order.
      query_sets, query_feats: the same for the query split (Market-1501), if any.
    """
    by_set = {id(s): feats[m] for m, s in sets.items()}
    by_set.update({id(s): query_feats[m] for m, s in (query_sets or {}).items()})

    def embed(modality, image_set):
        return by_set[id(image_set)]  # Extracted once, before the test is timed.

    eval_config = copy.deepcopy(config.eval)
    eval_config.metric = "euclidean"
    return evaluation.test(embed, sets, eval_config, query_sets)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Extracts features, learns XQDA if asked, tests; writes results.json and results.md.

    Args:
      config: the experiment config with `config.classical` (features, matching,
        xqda_lambda, qda_dims, xqda_solver, image_size, batch_size, train_images_per_id) and the usual
        `config.data` / `config.eval` groups.
      workdir: output folder (created).

    Returns:
      The contents of results.json: {'config', 'method', 'test', 'feature_dim',
      'xqda' (subspace size, solver, latent values > 1, the share of the metric clipped by
      the embedding; None for Euclidean), 'timing'}.

    XQDA is trained on the training identities of the fold (the validation identities held
    out, as for the networks; with `config.classical.use_val_ids` on the validation identities
    too, since no model selection needs them), with view 1 = the first modality of `config.data.modalities`
    and view 2 = the second: one metric for the cross-modal problem, learned from the
    cross-modal pairs (Liao 2015's cross-view formulation); with one modality both views
    are its images. The same metric then ranks every query/gallery pair.
    """
    from jaxreid import config as config_lib
    from jaxreid.data import sources

    config_lib.check_method(config, "classical")
    config_lib.validate(config)
    check_config(config)
    c = config.classical
    workdir = os.path.abspath(os.fspath(workdir))
    os.makedirs(workdir, exist_ok=True)
    timing = {}

    tick = time.time()
    data_config = copy.deepcopy(config.data)
    data_config.image_size = tuple(c.image_size)
    splits = sources.load_splits(data_config)
    timing["load_sec"] = time.time() - tick

    extract = FEATURES[c.features]
    modalities = tuple(config.data.modalities)
    tick = time.time()
    train_sets = {
        m: _limit_per_id(
            _concat(splits["train"][m], splits["val"][m]) if c.use_val_ids else splits["train"][m],
            c.train_images_per_id,
            config.seed,
        )
        for m in modalities
    }
    test_sets = splits["test"]
    query_sets = splits.get("query") or {}  # Market-1501's query split.
    test_feats = {
        m: extract_features(extract, test_sets[m].images, c.batch_size) for m in modalities
    }
    query_feats = {
        m: extract_features(extract, query_sets[m].images, c.batch_size) for m in query_sets
    }
    train_feats = {}
    if c.matching == "xqda":
        train_feats = {
            m: extract_features(extract, train_sets[m].images, c.batch_size) for m in modalities
        }
    jax.block_until_ready(jnp.zeros(()))
    num_images = sum(len(s) for s in test_sets.values()) + sum(len(f) for f in train_feats.values())
    num_images += sum(len(s) for s in query_sets.values())
    timing["extract_sec"] = time.time() - tick
    timing["extract_images"] = num_images
    logging.info(
        "%s features of %d images in %.1f s.", c.features, num_images, timing["extract_sec"]
    )

    feature_dim = int(next(iter(test_feats.values())).shape[1])
    xqda_info = None
    if c.matching == "xqda":
        tick = time.time()
        a, b = modalities[0], modalities[-1]
        model = xqda_lib.fit_xqda(
            train_feats[a],
            train_sets[a].person_ids,
            train_feats[b],
            train_sets[b].person_ids,
            lam=c.xqda_lambda,
            dims=c.qda_dims,
            solver=c.xqda_solver,
        )
        test_feats = {m: model.embed(f) for m, f in test_feats.items()}
        query_feats = {m: model.embed(f) for m, f in query_feats.items()}
        timing["xqda_sec"] = time.time() - tick
        xqda_info = {
            "dims": int(model.projection.shape[1]),
            "solver": model.solver,
            "latent_above_one": model.num_above_one,
            # Share of the metric M that the Euclidean embedding clips (0: exact ranking).
            "negative_metric_mass": model.negative_metric_mass(),
            "train_images": {m: len(s) for m, s in train_sets.items()},
            "views": [a, b],
        }

    tick = time.time()
    test = evaluate_features(config, test_sets, test_feats, query_sets or None, query_feats)
    timing["test_sec"] = time.time() - tick
    results = {
        "config": config.to_dict(),
        "method": method_name(config),
        "feature_dim": feature_dim,
        "xqda": xqda_info,
        "test": test,
        "timing": timing,
    }
    title = f"{config.data.name}, {method_name(config)}: test set"
    workdir_lib.write_results(workdir, results, evaluation.results_markdown(config, test, title))
    return results
