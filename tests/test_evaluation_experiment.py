"""The test protocols as a config selects them (jaxreid.evaluation.experiment): each equals
the protocol function called directly, re-ranking only when asked, and tables carry a tag."""

import numpy as np
import pytest

from jaxreid import config as config_lib
from jaxreid import evaluation
from jaxreid.data.image_set import ImageSet
from jaxreid.evaluation import experiment, rerank


def image_set(modality, ids, cams, rng):
    ids, cams = np.asarray(ids, np.int32), np.asarray(cams, np.int32)
    file_index = np.zeros(len(ids), np.int32)
    for key in set(zip(ids.tolist(), cams.tolist())):
        rows = [i for i, k in enumerate(zip(ids.tolist(), cams.tolist())) if k == key]
        file_index[rows] = np.arange(1, len(rows) + 1)
    return ImageSet(
        modality=modality,
        images=np.zeros((len(ids), 4, 2, 3 if modality == "rgb" else 1), np.uint8),
        person_ids=ids,
        camera_ids=cams,
        frame_ids=np.asarray([""] * len(ids), object),
        file_index=file_index,
        filenames=np.asarray([f"{modality}/{i}.png" for i in range(len(ids))], object),
    )


def features(sets, rng):
    """Features with identity structure, fixed per image set (what `embed` returns)."""
    centres = rng.normal(size=(100, 8))
    return {
        id(s): (centres[s.person_ids % 100] + 0.8 * rng.normal(size=(len(s), 8))).astype(np.float32)
        for s in sets
    }


def config_for(protocol, **eval_overrides):
    config = config_lib.default_config()
    config.eval.test_protocol = protocol
    for key, value in eval_overrides.items():
        config.eval[key] = value
    return config


def test_market_protocol_is_market1501_on_the_query_split():
    rng = np.random.default_rng(0)
    query = image_set("rgb", [1, 2, 3, 4] * 2, [1] * 8, rng)
    gallery = image_set("rgb", [1, 2, 3, 4, 0, -1] * 3, [2] * 12 + [1] * 6, rng)
    feats = features([query, gallery], rng)
    embed = lambda modality, s: feats[id(s)]
    config = config_for("market")
    got = experiment.test(embed, {"rgb": gallery}, config.eval, {"rgb": query})
    want = evaluation.market1501(
        feats[id(query)], query.person_ids, query.camera_ids,
        feats[id(gallery)], gallery.person_ids, gallery.camera_ids,
    )  # fmt: skip
    assert got["mAP"] == want["mAP"] and np.array_equal(got["cmc"], want["cmc"])
    with pytest.raises(ValueError, match="config.data.query_split"):
        experiment.test(embed, {"rgb": gallery}, config.eval)
    assert "Market-1501" in experiment.results_table(config, got)


def test_llcm_protocol_and_rerank_switch():
    rng = np.random.default_rng(1)
    ids = np.repeat(np.arange(1, 7), 4)
    vis = image_set("rgb", ids, np.tile([1, 2, 4, 5], 6), rng)
    nir = image_set("infrared", ids, np.tile([1, 2, 4, 5], 6), rng)
    feats = features([vis, nir], rng)
    embed = lambda modality, s: feats[id(s)]
    config = config_for("llcm", llcm_trials=2)
    got = experiment.test(embed, {"rgb": vis, "infrared": nir}, config.eval)
    want = evaluation.llcm(
        feats[id(vis)], vis.person_ids, vis.camera_ids, vis.file_index,
        feats[id(nir)], nir.person_ids, nir.camera_ids, nir.file_index, trials=2,
    )  # fmt: skip
    for direction in evaluation.LLCM_DIRECTIONS:
        assert got[direction]["mAP"] == want[direction]["mAP"]
        assert not got[direction].get("rerank")
    assert "no re-ranking" in experiment.protocol_tag(config)
    # Re-ranking only when config.eval.rerank asks for it, with its parameters.
    config = config_for("llcm", llcm_trials=2, rerank=True, rerank_k1=5, rerank_k2=2)
    params = rerank.RerankParams(k1=5, k2=2, lambda_value=0.3)
    got = experiment.test(embed, {"rgb": vis, "infrared": nir}, config.eval)
    want = evaluation.llcm(
        feats[id(vis)], vis.person_ids, vis.camera_ids, vis.file_index,
        feats[id(nir)], nir.person_ids, nir.camera_ids, nir.file_index, trials=2, rerank=params,
    )  # fmt: skip
    for direction in evaluation.LLCM_DIRECTIONS:
        assert got[direction]["mAP"] == want[direction]["mAP"]
    assert "k1=5, k2=2" in experiment.protocol_tag(config)
