"""Log messages a user cannot act on, filtered out of the command-line tools' logs.

Orbax logs every file it writes at INFO; TensorFlow Datasets warns about its own internals
(metadata it cannot fetch without internet, variant folders, file formats); JAX logs at INFO
that it found no TPU library on every machine without one. Warnings and errors of jaxreid
itself, and errors of every library, always pass.

Two TFDS messages are handled where jaxreid builds its datasets, so that the notebooks and
the Python API are quiet too, not only the command-line tools:
  - "Using custom data configuration ...": TFDS warns whenever a builder config is not one
    of the builder's registered ones, which every non-default synthetic dataset (another
    seed, size or identity count) is by design. `quiet_tfds` drops exactly that warning.
  - "Downloading and preparing dataset Unknown size ...": TFDS prints it to stdout (not a
    log) before it builds, with sizes it only knows for downloads; jaxreid builds from
    generated or local files. `QuietTfdsBuild` logs one INFO line instead.
"""

from __future__ import annotations

import logging

# (logger-name or path fragment, message prefix, highest level dropped) triples.
_NOISE = (
    ("tensorflow_datasets", "", logging.WARNING),
    ("orbax", "", logging.WARNING),
    # JAX's "fail quietly" TPU probe, at INFO, on every machine without libtpu; a TPU
    # machine whose TPU fails to start is told by JAX at WARNING or by an error.
    ("jax._src.xla_bridge", "Unable to initialize backend 'tpu'", logging.INFO),
)
_CUSTOM_CONFIG = "Using custom data configuration"


class QuietLibraries(logging.Filter):
    """Drops the records of `_NOISE` (by logger name or module path, message, level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        where = f"{record.name} {record.pathname}"
        message = record.getMessage()
        for source, prefix, highest in _NOISE:
            if record.levelno <= highest and source in where and message.startswith(prefix):
                return False
        return True


class _QuietCustomConfigs(logging.Filter):
    """Drops TFDS's "Using custom data configuration" warning, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            "tensorflow_datasets" in record.pathname and str(record.msg).startswith(_CUSTOM_CONFIG)
        )


_FILTER = QuietLibraries()
_CUSTOM_CONFIG_FILTER = _QuietCustomConfigs()


def install() -> None:
    """Adds the filter to the absl handler and the root logger's handlers (idempotent)."""
    from absl import logging as absl_logging

    handlers = [absl_logging.get_absl_handler(), *logging.getLogger().handlers]
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    quiet_tfds()


def quiet_tfds() -> None:
    """Drops TFDS's custom-config warning in this process (idempotent).

    A filter on absl's logger itself, which TFDS's dataset_builder logs through, so it works
    whatever handlers the caller (a notebook, pytest, absl.app) set up."""
    logger = logging.getLogger("absl")
    if _CUSTOM_CONFIG_FILTER not in logger.filters:
        logger.addFilter(_CUSTOM_CONFIG_FILTER)


class QuietTfdsBuild:
    """Mixin for jaxreid's TFDS builders: one INFO log line instead of TFDS's stdout prints.

    Put it before `tfds.core.GeneratorBasedBuilder` in the bases. TFDS's
    `_log_download_bytes` prints "Downloading and preparing dataset Unknown size (download:
    Unknown size, ...)" and `_log_download_done` "Dataset ... downloaded and prepared to ...";
    neither is about a download here.
    """

    def _log_download_bytes(self) -> None:
        from absl import logging as absl_logging

        absl_logging.info(
            "Building dataset %s/%s in %s (once; later runs read it from there).",
            self.name,  # type: ignore[attr-defined]
            self.builder_config.name,  # type: ignore[attr-defined]
            self.data_dir,  # type: ignore[attr-defined]
        )

    def _log_download_done(self) -> None:
        pass
