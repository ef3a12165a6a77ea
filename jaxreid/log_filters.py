"""Log messages a user cannot act on, filtered out of the command-line tools' logs.

Orbax logs every file it writes at INFO; TensorFlow Datasets warns about its own internals
(metadata it cannot fetch without internet, variant folders, file formats). Warnings and
errors of jaxreid itself, and errors of every library, always pass.
"""

from __future__ import annotations

import logging

# (logger-name or path fragment, message prefix) pairs dropped below ERROR.
_NOISE = (
    ("tensorflow_datasets", ""),
    ("orbax", ""),
)


class QuietLibraries(logging.Filter):
    """Drops records below ERROR from the noisy libraries' code (by module path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        where = f"{record.name} {record.pathname}"
        message = record.getMessage()
        for source, prefix in _NOISE:
            if source in where and message.startswith(prefix):
                return False
        return True


_FILTER = QuietLibraries()


def install() -> None:
    """Adds the filter to the absl handler and the root logger's handlers (idempotent)."""
    from absl import logging as absl_logging

    handlers = [absl_logging.get_absl_handler(), *logging.getLogger().handlers]
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
