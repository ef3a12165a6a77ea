"""Checks before a run does any work: the config, the device count, the work directory,
and, once the data are loaded, whether the training batch can be drawn from them.

`check` fails in seconds, before data is loaded, anything is compiled or any file is written;
`check_data` right after loading, before anything is written; a start that fails while
loading or checking the data leaves no trace in a work directory it created
(`cleanup_on_failure`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import jax
import ml_collections

from jaxreid import config as config_lib
from jaxreid import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Start:
    """A checked start: the absolute work directory, the recovery changes (see
    `jaxreid.workdir.check_compatible`) with which a diverged run is resumed, and whether
    `check` created the directory."""

    workdir: str
    recovery: dict
    created: bool


def check(config: ml_collections.ConfigDict, workdir: str, method: str) -> Start:
    """Validates `config` for this device count and for `method` (the caller's config.method
    name), and `workdir` for it.

    Raises:
      jaxreid.config.ConfigError (a ValueError): a config value is wrong, or config.method
        names another method (validation checks the keys of the method it names).
      jaxreid.workdir.WorkdirError: the work directory is unwritable or holds another run.
    """
    config_lib.check_method(config, method)
    config_lib.validate(config, num_devices=jax.device_count(), num_processes=jax.process_count())
    workdir = os.path.abspath(os.path.expanduser(os.fspath(workdir)))
    recovery = workdir_lib.check_compatible(workdir, config)
    created = not os.path.exists(workdir)
    workdir_lib.check_writable(workdir)
    return Start(workdir, recovery, created)


@contextlib.contextmanager
def cleanup_on_failure(start: Start):
    """Removes the work directory again if `check` created it and it is still empty when the
    body fails (for example, the dataset is missing)."""
    try:
        yield
    except BaseException:
        workdir = start.workdir
        if start.created and os.path.isdir(workdir) and not os.listdir(workdir):
            os.rmdir(workdir)
        raise


def check_data(config: ml_collections.ConfigDict, splits: dict) -> None:
    """Refuses a training batch the loaded training split cannot fill, before anything is
    written: P identities drawn without replacement need P training identities present in
    every modality (`jaxreid.data.sampler.index_identities`); config.batch.sampler='random'
    draws P x K distinct images.

    Args:
      splits: `jaxreid.data.sources.load_splits`' {'train': {modality: ImageSet}, ...}.

    Raises:
      jaxreid.config.ConfigError: naming the keys, their values, the data's counts and the fix.
    """
    from jaxreid.data import sampler  # NumPy only.

    data, batch = config.data, config.batch
    train_sets = [splits["train"][m] for m in data.modalities]
    where = f"config.data.name={data.name!r}, config.data.train_split={data.train_split!r}" + (
        "" if data.val_split else f" less validation fold config.data.fold={data.fold}"
    )
    try:
        index = sampler.index_identities([s.person_ids for s in train_sets])
    except ValueError as e:
        raise config_lib.ConfigError(
            f"{e} ({where}) Fix: a dataset with more identities."
        ) from None
    p, k = batch.num_identities, batch.images_per_identity
    if batch.sampler == "pk" and p > index.num_classes:
        raise config_lib.ConfigError(
            f"config.batch.num_identities={p} exceeds the {index.num_classes} training "
            f"identities present in every modality of config.data.modalities="
            f"{tuple(data.modalities)} ({where}). Fix: --config.batch.num_identities={index.num_classes} "
            "or fewer, or a dataset with more identities."
        )
    images = sum(len(s) for s in train_sets)
    if batch.sampler == "random" and p * k > images:
        raise config_lib.ConfigError(
            f"config.batch.num_identities={p} x config.batch.images_per_identity={k} = {p * k} "
            f"images per step (config.batch.sampler='random' draws them without replacement) "
            f"exceed the {images} training images ({where}). Fix: a smaller P or K."
        )
