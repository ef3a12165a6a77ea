"""Methods behind one registry (`config.method`, jaxreid.methods), the refusal of the keys it
replaced, and the conventional baseline tested through the networks' one protocol dispatch.

References: the method modules' own `train_and_evaluate` functions (the registry must hand
out exactly those), the protocol functions of jaxreid.evaluation called directly on the same
features (the dispatch must be a pure routing), and the removed keys' documented replacement.
"""

import numpy as np
import pytest
from absl import flags

from jaxreid import config as config_lib
from jaxreid import methods
from jaxreid import workdir as workdir_lib
from jaxreid.config import ConfigError, choices
from jaxreid.data.image_set import ImageSet

# --- the registry ------------------------------------------------------------------------------


def test_registry_hands_out_each_methods_own_entry_point():
    from jaxreid.classical import method as classical
    from jaxreid.training import distillation, supervised

    assert tuple(methods.METHODS) == choices.METHODS  # what validation accepts
    assert methods.entry_point("supervised") is supervised.train_and_evaluate
    assert methods.entry_point("distillation") is distillation.train_and_evaluate
    assert methods.entry_point("classical") is classical.train_and_evaluate
    with pytest.raises(ConfigError, match=r"config.method='xqda'.*'supervised', 'distillation'"):
        methods.entry_point("xqda")


def test_unknown_method_is_refused_by_validation_with_a_close_match():
    config = config_lib.default_config()
    config.method = "distilation"
    with pytest.raises(ConfigError, match=r"config.method='distilation'.*'distillation'\?"):
        config_lib.validate(config)


def set_main_flags(monkeypatch, spec, workdir):
    """--config and --workdir as jaxreid.main reads them, without parsing the process's
    other flags: another test module (e.g. jaxreid.search_cli's) may have defined required
    flags in the same pytest worker, which a full parse would refuse."""
    for name, value in (("config", spec), ("workdir", str(workdir))):
        monkeypatch.setattr(flags.FLAGS[name], "value", value)
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@pytest.mark.parametrize(
    "spec, overrides, expected",
    [
        ("configs/synthetic.py:quick", {}, "supervised"),
        ("configs/synthetic_distill.py:quick", {}, "distillation"),
        ("configs/classical.py:quick", {}, "classical"),
        ("configs/synthetic.py:quick", {"method": "classical"}, "classical"),
    ],
)
def test_main_runs_the_method_the_config_names(spec, overrides, expected, monkeypatch, tmp_path):
    from jaxreid import main

    called = []

    def fake(name):
        return lambda: lambda config, workdir: called.append((name, config.method, workdir))

    for name in methods.METHODS:
        monkeypatch.setitem(methods.METHODS, name, fake(name))
    monkeypatch.setattr(main, "_OVERRIDES", dict(overrides))
    set_main_flags(monkeypatch, spec, tmp_path)
    main.main(["jaxreid.main"])
    assert called == [(expected, expected, str(tmp_path))]


@pytest.mark.parametrize(
    "key, method", [("distill.enabled", "distillation"), ("classical.enabled", "classical")]
)
def test_main_refuses_a_removed_key_before_any_method_runs(
    key, method, monkeypatch, tmp_path, capsys
):
    from jaxreid import main

    for name in methods.METHODS:
        monkeypatch.setitem(methods.METHODS, name, lambda: pytest.fail("a method ran"))
    monkeypatch.setattr(main, "_OVERRIDES", {key: "True"})
    set_main_flags(monkeypatch, "configs/synthetic.py:quick", tmp_path)
    with pytest.raises(SystemExit) as e:
        main.main(["jaxreid.main"])
    assert e.value.code == 2
    error = capsys.readouterr().err
    assert f"config.{key} was removed" in error and f"config.method={method!r}" in error


# --- the keys config.method replaced -----------------------------------------------------------


@pytest.mark.parametrize(
    "key, method", [("distill.enabled", "distillation"), ("classical.enabled", "classical")]
)
def test_removed_keys_are_refused_naming_config_method(key, method, tmp_path):
    hint = f"config.method={method!r}"
    # As an override, whatever its value.
    for value in ("True", "false"):
        with pytest.raises(ConfigError, match=f"config.{key} was removed") as e:
            config_lib.apply_overrides(config_lib.default_config(), [f"{key}={value}"])
        assert hint in str(e.value)
    # Set by a config file: refused when it is loaded, naming the file.
    group, leaf = key.split(".")
    path = tmp_path / "old_style.py"
    path.write_text(
        "from jaxreid.config import default_config\n\n\n"
        "def get_config(arg=''):\n"
        "    config = default_config()\n"
        f"    config.{group}.{leaf} = True\n"
        "    return config\n"
    )
    with pytest.raises(ConfigError) as e:
        config_lib.load_config(str(path))
    assert str(path) in str(e.value) and hint in str(e.value)
    # In a ConfigDict built in code: refused by validation.
    config = config_lib.default_config()
    config[group][leaf] = True
    with pytest.raises(ConfigError) as e:
        config_lib.validate(config)
    assert hint in str(e.value)


def test_runs_saved_with_the_removed_keys_are_read_with_config_method():
    def saved(**groups):
        return workdir_lib.config_from_dict(groups).method

    assert saved(distill={"enabled": True, "source_modality": "rgb"}) == "distillation"
    assert saved(classical={"enabled": True}) == "classical"
    assert saved(distill={"enabled": False}, classical={"enabled": False}) == "supervised"


# --- the conventional baseline through the one protocol dispatch -------------------------------


def image_set(modality, ids, cams, seed):
    """An ImageSet of `ids` x `cams` with 2 images each (file_index 1, 2 per camera/person)."""
    rows = [(p, c, i) for p in ids for c in cams for i in (1, 2)]
    n = len(rows)
    return ImageSet(
        modality=modality,
        images=np.random.default_rng(seed).integers(0, 255, (n, 4, 2, 3), np.uint8),
        person_ids=np.asarray([r[0] for r in rows], np.int32),
        camera_ids=np.asarray([r[1] for r in rows], np.int32),
        frame_ids=np.array([""] * n, dtype=object),
        file_index=np.asarray([r[2] for r in rows], np.int32),
        filenames=np.array([f"{r}.png" for r in rows], dtype=object),
    )


def features(image_set, seed):
    """[N, 6] float32: a per-identity centre plus noise, so the metrics are not trivial."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(int(image_set.person_ids.max()) + 1, 6))
    return (centres[image_set.person_ids] + rng.normal(size=(len(image_set), 6))).astype(np.float32)


def classical_config(overrides):
    config = config_lib.default_config()
    config_lib.apply_overrides(config, ["method=classical", "eval.metric=cosine", *overrides])
    config_lib.validate(config)  # Each combination below is one validation lets through.
    return config


def assert_same(a, b):
    """Same nested results; exact: both sides run the same NumPy code on the same input."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], dict):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_classical_llcm_is_the_llcm_protocol_on_euclidean_distances():
    """A protocol the classical method's own copy of the dispatch refused (LLCM)."""
    from jaxreid.classical import method
    from jaxreid.evaluation.llcm import LLCM_IR_CAMERAS, LLCM_VIS_CAMERAS, llcm

    vis = image_set("rgb", range(5), LLCM_VIS_CAMERAS[:3], seed=0)
    ir = image_set("infrared", range(5), LLCM_IR_CAMERAS[:3], seed=1)
    feats = {"rgb": features(vis, 2), "infrared": features(ir, 2)}
    config = classical_config(
        ["data.modalities=rgb,infrared", "eval.test_protocol=llcm", "eval.llcm_trials=2"]
    )
    got = method.evaluate_features(config, {"rgb": vis, "infrared": ir}, feats)
    want = llcm(
        feats["rgb"], vis.person_ids, vis.camera_ids, vis.file_index,
        feats["infrared"], ir.person_ids, ir.camera_ids, ir.file_index,
        trials=2, vis_to_ir="released", metric="euclidean",
    )  # fmt: skip
    assert_same(got, want)


def test_classical_market_ranks_the_query_split_against_the_gallery():
    """The other protocol the old copy refused: Market-1501's queries are a split of their own."""
    from jaxreid.classical import method
    from jaxreid.evaluation.market import market1501

    gallery = image_set("rgb", range(6), (1, 2, 3), seed=3)
    query = image_set("rgb", range(6), (4,), seed=4)
    config = classical_config(
        [
            "data.modalities=rgb",
            "batch.images_per_identity=4",
            "eval.test_protocol=market",
            "data.query_split=query",
        ]
    )
    gf, qf = features(gallery, 5), features(query, 5)
    got = method.evaluate_features(
        config, {"rgb": gallery}, {"rgb": gf}, {"rgb": query}, {"rgb": qf}
    )
    want = market1501(
        qf, query.person_ids, query.camera_ids, gf, gallery.person_ids, gallery.camera_ids,
        metric="euclidean", ap="non_interpolated",
    )  # fmt: skip
    assert_same(got, want)


def test_classical_pairs_are_the_hafner_pairs_as_before():
    """The protocol the old copy had: the same call the copy made (Euclidean, its seed)."""
    from jaxreid.classical import method
    from jaxreid.evaluation import evaluate_modality_pairs

    rgb = image_set("rgb", range(6), (1, 2), seed=6)
    depth = image_set("depth", range(6), (1, 2), seed=7)
    feats = {"rgb": features(rgb, 8), "depth": features(depth, 9)}
    config = classical_config(["eval.repeats=3"])
    got = method.evaluate_features(config, {"rgb": rgb, "depth": depth}, feats)
    want = evaluate_modality_pairs(
        {
            m: dict(feats=feats[m], ids=s.person_ids, cams=s.camera_ids, frames=s.frame_ids)
            for m, s in (("rgb", rgb), ("depth", depth))
        },
        protocol="hafner_text",
        seed=0,
        repeats=3,
        max_queries_per_id=50,
        metric="euclidean",
    )
    assert_same(got, want)


def test_classical_protocol_without_its_modalities_is_refused_before_any_work(
    tmp_path, monkeypatch
):
    from jaxreid.classical import method
    from jaxreid.data import sources

    def load_splits(data_config):
        raise AssertionError("the data were loaded before the config was refused")

    monkeypatch.setattr(sources, "load_splits", load_splits)
    config = config_lib.default_config()
    config_lib.apply_overrides(config, ["method=classical", "eval.test_protocol=llcm"])
    with pytest.raises(ConfigError, match=r"test_protocol='llcm' needs the modalities"):
        method.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before the data or the workdir


@pytest.mark.parametrize("module", ["supervised", "distillation", "classical"])
def test_a_method_called_directly_refuses_another_methods_config(module, tmp_path, monkeypatch):
    """Validation checks the keys of the method config.method names (e.g. distillation's
    modalities), so a method must not run a config that names another one."""
    from jaxreid.data import sources

    def load_splits(data_config):
        raise AssertionError("the data were loaded before the config was refused")

    monkeypatch.setattr(sources, "load_splits", load_splits)
    config = config_lib.default_config()
    config.method = "distillation" if module != "distillation" else "supervised"
    with pytest.raises(ConfigError, match=rf"config.method='{config.method}'.*'{module}' method"):
        methods.METHODS[module]()(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
