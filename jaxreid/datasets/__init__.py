"""TFDS dataset builders, found by name through an explicit, lazy registry.

Importing this package imports neither TensorFlow nor any builder: a builder module is
imported (and its TFDS builder registered) only when `load_module` / `builder` asks for it.

To add a dataset, add `name: "jaxreid.datasets.<module>"` to `BUILDER_MODULES` and its
modalities to `jaxreid.config.choices.DATASET_MODALITIES` (and any `config.data.layout`
besides '' to `DATASET_LAYOUTS` there). The module
should define `builder(modality, data_dir=None, **kwargs) -> tfds.core.DatasetBuilder`
(not yet prepared); a module without it must define exactly one `tfds.core.DatasetBuilder`
subclass, which is then constructed as `Builder(config=modality, data_dir=data_dir, **kwargs)`.
"""

from __future__ import annotations

import importlib
import types

from jaxreid.config import choices

# Dataset name (as used in configs) -> module that defines its TFDS builder.
BUILDER_MODULES: dict[str, str] = {
    "synthetic": "jaxreid.datasets.synthetic.builder",  # TFDS name: synthetic_reid
    "sysu_mm01": "jaxreid.datasets.sysu_mm01.builder",
    "regdb": "jaxreid.datasets.regdb.builder",
    "biwi_rgbd_id": "jaxreid.datasets.biwi_rgbd_id.builder",
    "robotpku": "jaxreid.datasets.robotpku.builder",
    "llcm": "jaxreid.datasets.llcm.builder",
    "market1501": "jaxreid.datasets.market1501.builder",
}

# Modalities of each dataset (its builder's configs) and the values of config.data.layout it
# reads: defined in jaxreid.config.choices, which validation reads without importing this
# package (tests/test_config.py compares them with the builders' configs).
MODALITIES: dict[str, tuple[str, ...]] = choices.DATASET_MODALITIES
LAYOUTS: dict[str, tuple[str, ...]] = choices.DATASET_LAYOUTS
choices.check_registry(BUILDER_MODULES, choices.DATASETS, "jaxreid.datasets.BUILDER_MODULES")


def names() -> tuple[str, ...]:
    return tuple(sorted(BUILDER_MODULES))


def load_module(name: str) -> types.ModuleType:
    """Imports the builder module of dataset `name` (this imports TensorFlow)."""
    if name not in BUILDER_MODULES:
        raise ValueError(f"jaxreid.datasets: unknown dataset {name!r}; expected one of {names()}")
    return importlib.import_module(BUILDER_MODULES[name])


def builder(name: str, modality: str, data_dir=None, **kwargs):
    """The (not yet prepared) TFDS builder of one modality of dataset `name`.

    kwargs go to the module's `builder` function (e.g. `synthetic_config=` for 'synthetic').
    """
    module = load_module(name)
    if hasattr(module, "builder"):
        return module.builder(modality=modality, data_dir=data_dir, **kwargs)
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, tfds.core.DatasetBuilder)
        and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise ValueError(
            f"jaxreid.datasets: module {module.__name__} (dataset {name!r}) defines no `builder` function and "
            f"{len(classes)} DatasetBuilder classes; expected one"
        )
    return classes[0](config=modality, data_dir=data_dir, **kwargs)
