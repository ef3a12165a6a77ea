"""Config schema: typos fail early with the valid keys; every shipped config is valid."""

import glob
import importlib.util
import os

import pytest

from jaxreid import config as config_lib

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.py")))


def load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_key_names_key_suggestion_and_valid_keys():
    config = config_lib.default_config()
    config.optim.lerning_rate = 0.1
    with pytest.raises(ValueError) as e:
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


def test_modalities_must_split_k():
    config = config_lib.default_config()
    config.batch.images_per_identity = 3
    with pytest.raises(ValueError, match="images_per_identity=3"):
        config_lib.validate(config)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
@pytest.mark.parametrize("arg", ["", "quick"])
def test_shipped_configs_are_valid(path, arg):
    module = load(path)
    config = module.get_config(arg)
    config_lib.validate(config)
    assert module.__doc__ and "python -m jaxreid.main" in module.__doc__


def test_command_line_override_of_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError) as e:
        config_lib.check_override_flags(["--workdir=/x", "--config.optim.lerning_rate=0.1"])
    assert "config.optim.lerning_rate" in str(e.value) and "momentum" in str(e.value)
    with pytest.raises(ValueError, match="config.data.sythetic"):
        config_lib.check_override_flags(["--config.data.sythetic.seed", "3"])
    config_lib.check_override_flags(["--config.data.synthetic.seed=3", "--config.seed=1"])
