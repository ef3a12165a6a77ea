"""Experiment configuration: the schema, its validation, and loading config files.

  from jaxreid import config as config_lib
  config = config_lib.load_config("configs/synthetic.py:quick")
  config_lib.apply_overrides(config, {"optim.learning_rate": "0.01"})
  config_lib.validate(config, num_devices=jax.device_count(), num_processes=jax.process_count())

Modules: `schema` (every key and its default: `default_config`, `apply_quick`, `parse_args`),
`choices` (the vocabulary: every name a key may hold, read by the modules that act on it),
`architecture` (the networks' stages, layer order and feature-map sizes as arithmetic),
`validation` (the rule of every key, the combinations and the device-count check),
`rules` (the kinds of rule), `files` (config files and `key=value` overrides), `errors`
(`ConfigError`).

This package is jaxreid's bottom layer: it imports nothing else of jaxreid and no JAX, Flax or
TensorFlow, so `validate` takes milliseconds (tests/test_import_graph.py).
"""

from jaxreid.config.errors import ConfigError
from jaxreid.config.files import (
    apply_overrides,
    load_config,
    overrides_from_argv,
)
from jaxreid.config.schema import MODALITIES, apply_quick, default_config, parse_args
from jaxreid.config.validation import check_batch_sharding, check_method, validate

__all__ = [
    "MODALITIES",
    "ConfigError",
    "apply_overrides",
    "apply_quick",
    "check_batch_sharding",
    "check_method",
    "default_config",
    "load_config",
    "overrides_from_argv",
    "parse_args",
    "validate",
]
