"""Config schema, validation, config files and overrides (jaxreid.config).

Every wrong value must fail in `validate` before any work, naming the full key, the value and
what is allowed; every shipped config (with every argument) must pass.
"""

import glob
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxreid import config as config_lib
from jaxreid import datasets, inference, models
from jaxreid.config import ConfigError, architecture, validation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))

# Every argument of every shipped config (tests fail for a config file missing here).
SHIPPED = {
    "agw.py": ["", "regdb,trial=3", "synthetic", "quick", "synthetic,quick", "regdb,quick"],
    "agw_ca.py": ["", "regdb", "synthetic", "synthetic,quick"],
    "biwi.py": ["", "fold=1", "fold=2", "backbone=resnet50", "layout=processed", "quick"],
    "classical.py": [
        "",
        "features=whos,matching=euclidean",
        "dataset=synthetic_ir",
        "dataset=biwi,fold=1",
        "dataset=robotpku,features=whos",
        "dataset=sysu",
        "quick",
    ],
    "llcm.py": ["", "quick"],
    "market1501.py": ["", "quick"],
    "regdb.py": ["", "trial=10", "quick"],
    "robotpku.py": ["", "fold=2", "backbone=resnet50", "quick"],
    "synthetic.py": ["", "quick", "bnneck_wrt", "bnneck_wrt,quick", "one_stream"],
    "synthetic_distill.py": [
        "",
        "rgb_to_depth",
        "infrared_to_rgb",
        "rgb_to_infrared,logits",
        "no_freeze",
        "no_copy",
        "bn_update",
        "logits,quick",
    ],
    "synthetic_zero_pad.py": ["", "two_channel", "quick"],
    "sysu.py": ["", "quick"],
    "tekeli.py": [
        "",
        "update=sgd,metric=l1,rank=cosine",
        "update=median,metric=sql2,rank=euclidean",
        "update=midrange,metric=linf,rank=linf",
        "metric=dot,beta=0.1",
        "fc",
        "three_channel",
        "dataset=sysu",
        "dataset=regdb,trial=3",
        "dataset=sysu,fc,quick",
        "quick",
    ],
}


def config_with(overrides):
    config = config_lib.default_config()
    config_lib.apply_overrides(config, overrides)
    return config


def error(overrides, **kwargs) -> str:
    with pytest.raises(ConfigError) as e:
        config_lib.validate(config_with(overrides), **kwargs)
    return str(e.value)


# --- keys ----------------------------------------------------------------------------------


def test_unknown_key_names_key_suggestion_and_valid_keys():
    config = config_lib.default_config()
    config.optim.lerning_rate = 0.1
    with pytest.raises(ConfigError) as e:
        config_lib.validate(config)
    message = str(e.value)
    assert "config.optim.lerning_rate" in message
    assert "Did you mean config.optim.learning_rate" in message
    assert "weight_decay" in message  # The valid keys are listed.


def test_unknown_top_level_group():
    config = config_lib.default_config()
    config.modle = {"width": 8}
    with pytest.raises(ValueError, match=r"config\.modle.*config\.model"):
        config_lib.validate(config)


def test_every_schema_key_has_a_rule_and_every_rule_a_key():
    def leaves(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, ml_collections.ConfigDict):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield prefix + key

    schema_keys = set(leaves(config_lib.default_config()))
    rule_keys = set(validation.rules())
    assert not schema_keys - rule_keys, "add a rule to jaxreid/config/validation.py rules()"
    assert not rule_keys - schema_keys


# --- one value at a time -------------------------------------------------------------------

# (overrides, substrings the message must hold): the examples first, then one of
# every kind of rule (jaxreid.config.rules) and of the dynamic choices.
WRONG_VALUES = [
    (
        ["loss.name=sofmax"],
        [
            "config.loss.name='sofmax'",
            "('softmax', 'triplet', 'wrt', 'softmax+triplet', 'softmax+wrt')",
            "Did you mean 'softmax'?",
        ],
    ),
    (
        ["eval.metric=cosin"],
        ["config.eval.metric='cosin'", "'euclidean'", "Did you mean 'cosine'?"],
    ),
    (["data.image_size=64"], ["config.data.image_size=(64,)", "tuple of 2 ints >= 1"]),
    (
        ["eval.test_protocol=sysyu"],
        [
            "config.eval.test_protocol='sysyu'",
            "('pairs', 'sysu', 'regdb', 'llcm', 'market')",
            "Did you mean 'sysu'?",
        ],
    ),
    (
        ["distill.optim.name=adamw"],
        [
            "config.distill.optim.name='adamw'",
            "('sgd', 'momentum', 'adam')",
            "Did you mean 'adam'?",
        ],
    ),
    (["loss.name=softmax+triplt"], ["Did you mean 'softmax+triplet'?"]),
    (
        ["loss.name=triplet+softmax"],
        ["config.loss.name='triplet+softmax'", "'softmax+triplet', 'softmax+wrt')"],
    ),
    (
        ["batch.sampler=pkk"],
        ["config.batch.sampler='pkk'", "('pk', 'random')", "Did you mean 'pk'?"],
    ),
    (
        ["data.name=sysu"],
        ["config.data.name='sysu'", "'biwi_rgbd_id'", "Did you mean 'sysu_mm01'?"],
    ),
    (
        ["data.layout=processed"],
        ["config.data.layout='processed'", "('',)", "config.data.name='synthetic'"],
    ),
    (
        ["data.modalities=rgb,depht"],
        ["config.data.modalities=('rgb', 'depht')", "'depht' is not one", "Did you mean 'depth'?"],
    ),
    (
        ["data.name=sysu_mm01"],
        [
            "config.data.modalities=('rgb', 'depth')",
            "('rgb', 'infrared')",
            "config.data.name='sysu_mm01'",
        ],
    ),
    (["data.modalities=rgb,rgb"], ["config.data.modalities=('rgb', 'rgb')", "repeats"]),
    (
        ["data.input_layout=zero_pad3"],
        ["config.data.input_layout='zero_pad3'", "'gray'", "Did you mean"],
    ),
    (
        ["data.normalization=imagnet"],
        ["config.data.normalization='imagnet'", "Did you mean 'imagenet'?"],
    ),
    (
        ["model.backbone=resnet19"],
        ["config.model.backbone='resnet19'", "'resnet50'", "Did you mean 'resnet18'?"],
    ),
    (["model.head=distanse"], ["config.model.head='distanse'", "Did you mean 'distance'?"]),
    (["model.distance.metric=l3"], ["config.model.distance.metric='l3'", "'sql2'"]),
    (
        ["model.distance.center_update=emaa"],
        ["config.model.distance.center_update='emaa'", "Did you mean 'ema'?"],
    ),
    (
        ["eval.feature=embeding"],
        ["config.eval.feature='embeding'", "'layer4'", "Did you mean 'embedding'?"],
    ),
    (
        ["loss.name=triplet", "loss.triplet_feature=logits"],
        ["config.loss.triplet_feature='logits'", "config.loss.name='triplet'"],
    ),
    (
        ["model.head=distance", "eval.feature=embedding"],
        ["config.eval.feature='embedding'", "'features'"],
    ),
    (
        ["optim.schedule=cosin"],
        [
            "config.optim.schedule='cosin'",
            "('constant', 'cosine', 'step', 'agw')",
            "Did you mean 'cosine'?",
        ],
    ),
    (["distill.optim.schedule=linear"], ["config.distill.optim.schedule='linear'"]),
    (["eval.protocol=hafnr"], ["config.eval.protocol='hafnr'", "Did you mean 'hafner_text'?"]),
    (["eval.val_protocol=ful"], ["config.eval.val_protocol='ful'", "Did you mean 'full'?"]),
    (  # The former name of the text protocol: refused, naming both that replace it.
        ["eval.protocol=hafner"],
        ["config.eval.protocol='hafner'", "no longer accepted", "'hafner_text'", "'hafner_code'"],
    ),
    (
        ["eval.sysu_sampler=oficial"],
        ["config.eval.sysu_sampler='oficial'", "Did you mean 'official'?"],
    ),
    (
        ["eval.sysu_settings=all_singel"],
        ["config.eval.sysu_settings=('all_singel',)", "Did you mean 'all_single'?"],
    ),
    (["eval.sysu_settings=()"], ["config.eval.sysu_settings=()", "at least 1"]),
    (
        ["eval.val_pairs=('Q:rgb G:infrared',)"],
        ["config.eval.val_pairs", "'Q:rgb G:depth'", "'Q:rgb G:infrared' is not one"],
    ),
    (["distill.targets=pared"], ["config.distill.targets='pared'", "Did you mean 'paired'?"]),
    (["distill.frozen_bn=fix"], ["config.distill.frozen_bn='fix'", "('fixed', 'update')"]),
    (
        ["distill.early_stopping=val_map"],
        ["config.distill.early_stopping='val_map'", "Did you mean 'val_mAP'?"],
    ),
    (
        ["distill.loss_reduction=sums"],
        ["config.distill.loss_reduction='sums'", "'per_sample'", "Did you mean 'sum'?"],
    ),
    (
        ["distill.source_modality=dept"],
        ["config.distill.source_modality='dept'", "Did you mean 'depth'?"],
    ),
    (
        ["method=distillation", "distill.freeze_from=layr3"],
        ["config.distill.freeze_from='layr3'", "'layer<i>_<j>'"],
    ),
    (["optim.learning_rate=0"], ["config.optim.learning_rate=0.0", "> 0"]),
    (["optim.learning_rate=nan"], ["config.optim.learning_rate=nan", "finite"]),
    (["distill.optim.learning_rate=-1e-4"], ["config.distill.optim.learning_rate=-0.0001", "> 0"]),
    (["optim.momentum=1"], ["config.optim.momentum=1.0", "in [0, 1)"]),
    (["model.dropout_rate=1"], ["config.model.dropout_rate=1.0", "in [0, 1)"]),
    (["model.distance.momentum=-0.1"], ["config.model.distance.momentum=-0.1", "in [0, 1)"]),
    (["loss.triplet_margin=-0.1"], ["config.loss.triplet_margin=-0.1", ">= 0"]),
    (["optim.weight_decay=-1e-4"], ["config.optim.weight_decay=-0.0001", ">= 0"]),
    (["optim.step_factor=0"], ["config.optim.step_factor=0.0", "> 0"]),
    (
        ["optim.step_boundaries=(0.75,0.5)"],
        ["config.optim.step_boundaries=(0.75, 0.5)", "strictly increasing numbers in (0, 1)"],
    ),
    (["optim.step_boundaries=(0.5,1.0)"], ["config.optim.step_boundaries=(0.5, 1.0)", "in (0, 1)"]),
    (["num_train_steps=0"], ["config.num_train_steps=0", "an int >= 1"]),
    (["eval_every_steps=0"], ["config.eval_every_steps=0", "an int >= 1"]),
    (["log_every_steps=-5"], ["config.log_every_steps=-5", "an int >= 1"]),
    (["checkpoint_every_steps=0"], ["config.checkpoint_every_steps=0", ">= 1"]),
    (["distill.num_train_steps=-1"], ["config.distill.num_train_steps=-1", ">= 0"]),
    (["eval.repeats=0"], ["config.eval.repeats=0", ">= 1"]),
    (["data.num_folds=1"], ["config.data.num_folds=1", "an int >= 2"]),
    (["data.pad_crop=-1"], ["config.data.pad_crop=-1", "an int >= 0"]),
    (["model.width=0"], ["config.model.width=0", "an int >= 1"]),
    (["model.embedding_size=-1"], ["config.model.embedding_size=-1", "an int >= 0"]),
    (["batch.eval_batch_size=0"], ["config.batch.eval_batch_size=0", ">= 1"]),
    (["batch.num_identities=0"], ["config.batch.num_identities=0", ">= 1"]),
    (["data.image_size=(64, 0)"], ["config.data.image_size=(64, 0)", "2 ints >= 1"]),
    (["data.train_split="], ["config.data.train_split=''", "non-empty"]),
    (["seed=-1"], ["config.seed=-1", ">= 0"]),
]


@pytest.mark.parametrize("overrides, expected", WRONG_VALUES, ids=lambda x: ",".join(x)[:40])
def test_wrong_value_names_key_value_and_allowed(overrides, expected):
    message = error(overrides)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


def test_distill_optimizer_error_names_the_distill_key():
    message = error(["distill.optim.name=adamw"])
    assert "config.optim.name" not in message  # The issue: it named the wrong key.


def test_wrong_type_in_a_saved_config():
    values = config_lib.default_config().to_dict()
    values["data"]["random_flip"] = 1  # e.g. a hand-edited run.json
    values["batch"]["num_identities"] = 8.0
    with pytest.raises(ConfigError) as e:
        config_lib.validate(ml_collections.ConfigDict(values))
    assert "config.data.random_flip=1: expected True or False" in str(e.value)
    assert "config.batch.num_identities=8.0: expected an int >= 1" in str(e.value)
    assert str(e.value).startswith("2 config problems")  # All reported at once.


# --- combinations --------------------------------------------------------------------------

WRONG_COMBINATIONS = [
    (
        ["eval.camera_rule=true"],
        ["config.eval.camera_rule=True", "config.eval.protocol='hafner_code'", "'hafner_text'"],
    ),
    (
        [
            "eval.protocol=hafner_code",
            "eval.camera_rule=true",
            "eval.hafner_code_use_all_quirk=true",
        ],
        ["config.eval.hafner_code_use_all_quirk=True", "config.eval.camera_rule=True"],
    ),
    (
        ["eval.protocol=hafner_code", "eval.rerank=true"],
        ["config.eval.rerank=True", "'hafner_code' protocol has no re-ranking"],
    ),
    (["batch.images_per_identity=3"], ["config.batch.images_per_identity=3", "('rgb', 'depth')"]),
    (
        ["data.modalities=rgb", "data.input_layout=zero_pad"],
        ["config.data.input_layout='zero_pad'", "('rgb',)"],
    ),
    (["data.fold=3"], ["config.data.fold=3", "0..2", "config.data.num_folds=3"]),
    (
        ["data.modalities=rgb,depth,infrared", "batch.images_per_identity=6"],
        ["config.eval.val_pairs", "'Q:infrared G:rgb'"],
    ),
    (
        ["model.head=distance", "loss.name=triplet"],
        ["config.model.head='distance'", "config.loss.name='triplet'"],
    ),
    (
        ["model.embedding_size=0", "loss.name=triplet"],
        ["config.model.embedding_size=0", "config.loss.name='triplet'"],
    ),
    (
        ["eval.test_protocol=sysu"],
        [
            "config.eval.test_protocol='sysu'",
            "('infrared', 'rgb')",
            "config.data.modalities=('rgb', 'depth')",
        ],
    ),
    (
        ["eval.test_protocol=regdb", "data.modalities=rgb,infrared"],
        ["config.eval.test_protocol='regdb'", "('rgb', 'thermal')"],
    ),
    (
        ["data.modalities=rgb,infrared", "eval.test_protocol=sysu", "eval.sysu_sampler=official"],
        ["config.eval.sysu_perm_file"],
    ),
    (
        ["optim.warmup_steps=1500"],
        ["config.optim.warmup_steps=1500", "config.num_train_steps=1500"],
    ),
    (
        ["method=distillation", "distill.optim.warmup_steps=1000"],
        ["config.distill.optim.warmup_steps=1000", "config.distill.num_train_steps=1000"],
    ),
    (
        ["method=distillation", "data.modalities=rgb"],
        ["config.distill.source_modality='depth'", "two modalities"],
    ),
    (
        ["method=distillation", "distill.source_modality=infrared"],
        ["config.distill.source_modality='infrared'", "('rgb', 'depth')"],
    ),
    (
        ["method=distillation", "data.input_layout=zero_pad"],
        ["config.data.input_layout='zero_pad'", "('shared', 'gray')"],
    ),
    (["method=distillation", "model.head=distance"], ["config.model.head='distance'", "'linear'"]),
    (
        ["method=distillation", "distill.freeze_from=layer5"],
        ["config.distill.freeze_from='layer5'", "layer4_1/bn2"],
    ),
    (
        ["method=distillation", "distill.freeze_from=layer2_2"],
        ["config.distill.freeze_from='layer2_2'", "layer2_1/bn2"],
    ),
    (
        ["method=distillation", "model.backbone=resnet34", "distill.freeze_from=layer3_6"],
        ["config.distill.freeze_from='layer3_6'", "layer3_5/bn2"],
    ),
    (
        ["method=distillation", "distill.freeze_from=layer1_0/conv3"],
        ["config.distill.freeze_from='layer1_0/conv3'", "layer1_0/bn2"],
    ),
]


def test_freezing_point_is_a_layer_the_network_lists():
    # ResNet18's basic blocks have no conv3: the layers listed are those of this network.
    message = error(["method=distillation", "distill.freeze_from=layer1_0/conv3"])
    listed = message.split("naming a layer of this network:")[1]
    assert "conv3" not in listed and "layer4_1/bn2" in listed and "layer4_2" not in listed
    message = error(
        ["method=distillation", "distill.freeze_from=embedding", "model.embedding_size=0"]
    )
    assert "config.model.embedding_size=0" in message
    message = error(["method=distillation", "distill.freeze_from=classifier", "loss.name=triplet"])
    assert "config.loss.name='triplet'" in message


def test_freezing_point_is_checked_only_when_distillation_freezes():
    # A review found a wrong freezing point refused in a run that freezes nothing.
    for value in ("layr3", "layer9", "layer1_0/conv3"):
        config_lib.validate(config_with([f"distill.freeze_from={value}"]))
        assert "config.distill.freeze_from" in error(
            ["method=distillation", f"distill.freeze_from={value}"]
        )


@pytest.mark.parametrize("overrides, expected", WRONG_COMBINATIONS, ids=lambda x: ",".join(x)[:50])
def test_wrong_combination_names_every_key(overrides, expected):
    message = error(overrides)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


@pytest.mark.parametrize(
    "overrides",
    [
        ["method=distillation", "distill.freeze_from=layer3_0/conv3", "model.backbone=resnet50"],
        ["method=distillation", "distill.freeze_from=layer3_5/bn2", "model.backbone=resnet34"],
        ["method=distillation", "distill.freeze_from=embedding_bn"],
        ["model.head=distance", "loss.name=softmax+triplet", "eval.feature=features"],
        [
            "data.modalities=rgb,infrared",
            "eval.test_protocol=sysu",
            "eval.sysu_sampler=official",
            "eval.sysu_perm_file=/data/rand_perm_cam.mat",
        ],
        [
            "data.modalities=rgb,depth,infrared",
            "batch.images_per_identity=6",
            "eval.val_pairs=('Q:rgb G:infrared',)",
        ],
        ["eval.metric=l2"],  # An alias distances.canonical_metric accepts.
    ],
)
def test_valid_combinations_pass(overrides):
    config_lib.validate(config_with(overrides))


# --- devices -------------------------------------------------------------------------------


def nearest_valid(value, multiple_of):
    """Brute force: the values >= 1 closest to `value` that `multiple_of` accepts."""
    valid = [v for v in range(1, 10 * value + 100) if multiple_of(v)]
    best = min(abs(v - value) for v in valid)
    return {v for v in valid if abs(v - value) == best}


@pytest.mark.parametrize("num_devices", [3, 5, 6, 7])
@pytest.mark.parametrize("spec", ["configs/synthetic.py", "configs/synthetic.py:quick"])
def test_batch_that_devices_cannot_split_names_nearest_valid_values(num_devices, spec):
    config = config_lib.load_config(spec)
    p, k = config.batch.num_identities, config.batch.images_per_identity
    config_lib.validate(config, num_devices=1)
    with pytest.raises(ConfigError) as e:
        config_lib.validate(config, num_devices=num_devices)
    message = str(e.value)
    assert "config.batch.num_identities" in message
    assert "config.batch.images_per_identity" in message
    assert f"{num_devices} devices" in message
    proposals = re.findall(r"--config\.(batch\.\w+)=(\d+)", message)
    proposed_p = {int(v) for key, v in proposals if key == "batch.num_identities"}
    proposed_k = {int(v) for key, v in proposals if key == "batch.images_per_identity"}
    assert nearest_valid(p, lambda q: q * k % num_devices == 0) <= proposed_p
    modalities = len(config.data.modalities)
    assert (
        nearest_valid(k, lambda q: q % modalities == 0 and p * q % num_devices == 0) <= proposed_k
    )
    for key, value in proposals:  # Exactly the proposed overrides pass.
        fixed = config_lib.load_config(spec)
        config_lib.apply_overrides(fixed, {key: value})
        config_lib.validate(fixed, num_devices=num_devices)


def test_batch_must_split_over_processes_too():
    config = config_lib.default_config()  # 8 x 4 = 32
    config_lib.validate(config, num_devices=8, num_processes=2)
    with pytest.raises(ConfigError, match=r"8 devices in 3 processes.*multiple of 24"):
        config_lib.validate(config, num_devices=8, num_processes=3)


# --- shipped configs -----------------------------------------------------------------------


def test_every_config_file_is_listed():
    assert sorted(SHIPPED) == [os.path.basename(p) for p in CONFIGS]


@pytest.mark.parametrize(
    "spec", [f"configs/{name}:{arg}" for name, args in SHIPPED.items() for arg in args]
)
def test_shipped_configs_are_valid(spec):
    config = config_lib.load_config(spec)
    config_lib.validate(config, num_devices=8)  # The test suite's 8 host devices.
    config_lib.validate(config, num_devices=1)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_shipped_configs_say_how_to_run_them(path):
    module = config_lib.files.import_file(path)
    assert module.__doc__ and "python -m jaxreid.main" in module.__doc__


# --- config files --------------------------------------------------------------------------


def test_load_config_from_another_directory(tmp_path, monkeypatch):
    here = config_lib.load_config("configs/tekeli.py:fc,quick")
    monkeypatch.chdir(tmp_path)
    there = config_lib.load_config("configs/tekeli.py:fc,quick")
    assert there.to_dict() == here.to_dict()
    assert there.model.head == "linear" and there.model.width == 8  # The arguments applied.
    absolute = config_lib.load_config(os.path.join(ROOT, "configs", "synthetic.py"))
    assert absolute.model.width == 16


def test_missing_config_file_names_it_and_lists_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        config_lib.load_config("configs/synthetc.py:quick")
    message = str(e.value)
    assert "'configs/synthetc.py'" in message
    assert "configs/synthetic.py" in message and "configs/tekeli.py" in message


def test_unknown_config_argument_names_the_spec():
    with pytest.raises(
        ConfigError,
        match=r"configs/synthetic\.py:quik.*'quik'.*\('one_stream', 'bnneck_wrt', 'quick'\)",
    ):
        config_lib.load_config("configs/synthetic.py:quik")


# --- overrides -----------------------------------------------------------------------------


def test_apply_overrides_parses_with_the_type_of_the_value_replaced():
    config = config_lib.default_config()
    config_lib.apply_overrides(
        config,
        [
            "seed=3",
            "optim.learning_rate=1",  # int text for a float key -> 1.0
            "loss.triplet_margin=3e-1",
            "method=distillation",
            "eval.flip_test=true",
            "data.random_flip=False",
            "data.center_depth=0",
            "data.data_dir=/tmp/x=y",  # Split at the first '='.
            "data.image_size=[32, 16]",
            "data.modalities=rgb,infrared",  # Bare comma-separated words.
            "eval.sysu_settings=('all_single',)",
            "eval.val_pairs=Q:rgb G:rgb",  # One value -> a 1-tuple (config_flags).
            "config.model.width=8",  # A leading 'config.' is allowed.
        ],
    )
    assert config.seed == 3 and isinstance(config.seed, int)
    assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
    assert config.loss.triplet_margin == 0.3
    assert config.method == "distillation" and config.eval.flip_test is True
    assert config.data.random_flip is False and config.data.center_depth is False
    assert config.data.data_dir == "/tmp/x=y"
    assert config.data.image_size == (32, 16)
    assert config.data.modalities == ("rgb", "infrared")
    assert config.eval.sysu_settings == ("all_single",)
    assert config.eval.val_pairs == ("Q:rgb G:rgb",)
    assert config.model.width == 8
    config_lib.apply_overrides(config, {"optim.momentum": 0, "data.image_size": [64, 32]})
    assert config.optim.momentum == 0.0 and isinstance(config.optim.momentum, float)
    assert config.data.image_size == (64, 32)


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "optim.lerning_rate=0.1",
            r"config\.optim\.lerning_rate.*Did you mean config\.optim\.learning_rate",
        ),
        ("optm.learning_rate=0.1", r"config\.optm .*Did you mean config\.optim\?"),
        ("model.width=8.5", r"config\.model\.width='8\.5': expected an int"),
        ("model.width=wide", r"config\.model\.width='wide'"),
        ("data.random_flip=maybe", r"config\.data\.random_flip='maybe': expected a bool"),
        ("optim.learning_rate=fast", r"config\.optim\.learning_rate='fast': expected a float"),
        ("optim=sgd", r"config\.optim is a group of keys"),
        ("optim.learning_rate", r"expected key=value"),
    ],
)
def test_apply_overrides_rejects_unknown_keys_and_unparsable_values(override, expected):
    with pytest.raises(ConfigError, match=expected):
        config_lib.apply_overrides(config_lib.default_config(), [override])


def test_overrides_from_argv():
    argv = [
        "jaxreid.main",
        "--config=configs/synthetic.py:quick",
        "--workdir=/tmp/w",
        "--config.optim.learning_rate=0.01",
        "--config.model.gem_learnable",
        "--noconfig.data.random_flip",
        "--config.seed",
        "3",
        "--config.data.image_size=(32,16)",
        "--config.optim.learning_rate=0.02",  # The later flag wins.
    ]
    overrides, rest = config_lib.overrides_from_argv(argv)
    assert overrides == {
        "optim.learning_rate": "0.02",
        "model.gem_learnable": "true",
        "data.random_flip": "false",
        "seed": "3",
        "data.image_size": "(32,16)",
    }
    config = config_lib.apply_overrides(config_lib.default_config(), overrides)
    assert config.model.gem_learnable is True and config.data.random_flip is False
    assert config.seed == 3 and config.data.image_size == (32, 16)
    assert rest == ["jaxreid.main", "--config=configs/synthetic.py:quick", "--workdir=/tmp/w"]


def test_command_line_override_of_unknown_key_lists_valid_keys():
    def apply(argv):
        overrides, _ = config_lib.overrides_from_argv(argv)
        config_lib.apply_overrides(config_lib.default_config(), overrides)

    with pytest.raises(ConfigError) as e:
        apply(["--workdir=/x", "--config.optim.lerning_rate=0.1"])
    assert "config.optim.lerning_rate" in str(e.value) and "momentum" in str(e.value)
    with pytest.raises(
        ValueError, match=r"config\.data\.sythetic .*Did you mean config\.data\.synthetic"
    ):
        apply(["--config.data.sythetic.seed", "3"])
    apply(["--config.data.synthetic.seed=3", "--config.seed=1"])


def test_config_from_saved_dict_keeps_defaults_and_rejects_unknown_keys():
    saved = {"model": {"width": 8}, "data": {"image_size": [32, 16]}}
    config = inference.config_from_dict(saved, "w/run.json")
    assert config.model.width == 8 and config.data.image_size == (32, 16)
    assert config.model.backbone == "resnet18"  # Not saved: the default.
    with pytest.raises(ConfigError, match=r"w/run\.json: Unknown config key config\.model\.widht"):
        inference.config_from_dict({"model": {"widht": 8}}, "w/run.json")


# --- what the rules rely on ----------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["loss.name=triplet"],
        ["loss.name=softmax+triplet", "model.embedding_size=0"],
        ["model.head=distance"],
        ["model.backbone=resnet50"],
    ],
)
def test_model_outputs_are_those_of_the_built_model(overrides):
    config = config_with(overrides + ["model.width=4"])
    model = models.model_from_config(config, num_classes=5)
    key = jax.random.PRNGKey(0)
    x = np.zeros((2, 32, 16, 3), np.float32)
    (_, intermediates), _ = jax.eval_shape(
        lambda x: model.init_with_output({"params": key, "dropout": key}, x, train=False), x
    )
    assert sorted(validation.model_outputs(config)) == sorted(intermediates)


def test_feature_map_sizes_worked_example():
    # By hand, each stride-2 step rounding up: 64x32 -> conv1 32x16 -> max-pool 16x8 ->
    # layer1 16x8 -> 8x4 -> 4x2 -> 2x1; odd 33x17 -> 17x9 -> 9x5 -> 9x5 -> 5x3 -> 3x2 -> 2x1,
    # and with last_stride 1 layer4 keeps layer3's 3x2.
    names = ("conv1", "stem", "layer1", "layer2", "layer3", "layer4")
    sizes = [(32, 16), (16, 8), (16, 8), (8, 4), (4, 2), (2, 1)]
    assert architecture.feature_map_sizes((64, 32)) == [(n, *s) for n, s in zip(names, sizes)]
    sizes = [(17, 9), (9, 5), (9, 5), (5, 3), (3, 2), (2, 1)]
    assert architecture.feature_map_sizes((33, 17)) == [(n, *s) for n, s in zip(names, sizes)]
    assert architecture.feature_map_sizes((33, 17), last_stride=1)[-1] == ("layer4", 3, 2)


@pytest.mark.parametrize(
    "image_size, backbone, options",
    [
        ((32, 16), "resnet18", {}),
        ((37, 23), "resnet34", {"last_stride": 1}),
        ((64, 48), "resnet50", {}),
        ((17, 9), "resnet18", {"streams": 2, "shared_from": "layer3"}),  # two-stream stem
        ((50, 30), "resnet50", {"last_stride": 1, "streams": 2, "shared_from": "layer1"}),
    ],
)
def test_feature_map_sizes_are_those_of_the_built_backbone(image_size, backbone, options):
    """architecture.feature_map_sizes is integer arithmetic; the reference is the shape of
    every feature map of the Flax ResNet itself (jax.eval_shape), conv1's captured."""
    net = models.get_backbone(backbone, width=4, **options)()
    x = jnp.zeros((1, *image_size, 3))
    modality = {"modality": 0} if options.get("streams", 1) > 1 else {}

    def outputs():
        variables = net.init(jax.random.key(0), x, False, **modality)
        (_, intermediates), state = net.apply(
            variables,
            x,
            False,
            **modality,
            mutable=["intermediates"],
            capture_intermediates=lambda module, method: (
                method == "__call__" and len(module.path) == 1 and module.path[0].endswith("conv1")
            ),  # the stem's, of stream 0 if two
        )
        (conv1,) = jax.tree.leaves(state["intermediates"])
        return {"conv1": conv1, **{k: v for k, v in intermediates.items() if k != "pooled"}}

    found = {name: shape.shape[1:3] for name, shape in jax.eval_shape(outputs).items()}
    sizes = architecture.feature_map_sizes(image_size, backbone, options.get("last_stride", 2))
    assert {name: (height, width) for name, height, width in sizes} == found


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.backbone=resnet34", "model.embedding_size=0", "loss.name=triplet"],
        ["model.backbone=resnet50", "model.non_local=(0,2,3,0)", "model.head=bnneck"],
        ["model.shared_from=layer3", "model.pooling=gem", "model.gem_learnable=true"],
        ["data.modalities=rgb,depth,infrared", "model.shared_from=layer1", "model.head=bnneck"],
    ],
)
def test_layer_order_is_that_of_the_built_model(overrides):
    """architecture.layer_order (validation's, from the config) lists the layers the network
    built from the same config lists, in the same order."""
    config = config_with(overrides + ["model.width=4"])
    model = models.model_from_config(config, num_classes=5)
    assert architecture.layer_order(config) == model.layer_order()


def test_stage_sizes_and_blocks_are_those_of_the_registered_backbones():
    # He et al. 2016, Table 1: ResNet18 2-2-2-2 basic blocks, ResNet34 / 50 3-4-6-3 basic /
    # bottleneck blocks (written out here, not read from the code under test).
    expected = {"resnet18": ((2, 2, 2, 2), 6), "resnet34": ((3, 4, 6, 3), 6)}
    expected["resnet50"] = ((3, 4, 6, 3), 8)  # bottleneck: conv1-3, bn1-3, downsample x2
    for name, (stages, block_layers) in expected.items():
        backbone = models.BACKBONES[name]
        assert tuple(backbone.keywords["stage_sizes"]) == stages == architecture.STAGE_SIZES[name]
        assert len(backbone.keywords["block_cls"].layers) == block_layers
        kind = architecture.BACKBONE_BLOCKS[name]
        assert backbone.keywords["block_cls"].layers == architecture.BLOCK_LAYERS[kind]


def test_dataset_modalities_and_layouts_are_those_of_the_builders():
    import tensorflow_datasets as tfds

    assert sorted(datasets.MODALITIES) == sorted(datasets.BUILDER_MODULES)
    for name in datasets.BUILDER_MODULES:
        module = datasets.load_module(name)
        (builder,) = [
            o
            for o in vars(module).values()
            if isinstance(o, type)
            and issubclass(o, tfds.core.DatasetBuilder)
            and o.__module__ == module.__name__
        ]
        expected = {
            m if not layout else f"{m}_{layout}"
            for m in datasets.MODALITIES[name]
            for layout in datasets.LAYOUTS[name]
        }
        assert {c.name for c in builder.BUILDER_CONFIGS} == expected, name


def test_a_registry_must_register_the_names_validation_accepts():
    choices = config_lib.choices
    choices.check_registry({"b": 1, "a": 2}, ("a", "b"), "t.TABLE")  # Order does not matter.
    with pytest.raises(TypeError, match=r"t.TABLE registers \['a', 'c'\].*allows \['a', 'b'\]"):
        choices.check_registry({"a": 1, "c": 2}, ("a", "b"), "t.TABLE")


def test_nearest_valid_reference_is_right():
    # The brute-force reference of the device tests, on a hand-worked case: K=4 on 6 devices
    # needs P*4 % 6 == 0, i.e. P a multiple of 3; the nearest to P=8 is 9.
    assert nearest_valid(8, lambda q: q * 4 % 6 == 0) == {9}
    assert nearest_valid(4, lambda q: q * 4 % 3 == 0) == {3}


def test_float16_and_bfloat16_are_valid_dtypes():
    config = config_lib.default_config()
    for dtype in ("float16", "bfloat16"):
        config.model.dtype = dtype
        config_lib.validate(config)
    config.model.dtype = "half"
    with pytest.raises(ConfigError, match="model.dtype"):
        config_lib.validate(config)
