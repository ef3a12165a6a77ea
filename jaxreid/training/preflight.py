"""Checks before a run does any work: the config, the device count, the work directory.

Everything here fails in seconds, before data is loaded, anything is compiled or any file is
written; a start that fails later, while loading data, leaves no trace in a work directory it
created (`cleanup_on_failure`).
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


def check(config: ml_collections.ConfigDict, workdir: str) -> Start:
    """Validates `config` for this device count, and `workdir` for it.

    Raises:
      jaxreid.config.ConfigError (a ValueError): a config value is wrong.
      jaxreid.workdir.WorkdirError: the work directory is unwritable or holds another run.
    """
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
