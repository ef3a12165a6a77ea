"""The error a wrong config raises, and the close-match hint its messages end with."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A config key, value or file that cannot be used; the message names it and what was
    expected. A ValueError, so code that caught the ValueErrors of old keeps working."""


def closest(value: object, choices: Iterable[object]) -> str | None:
    """The entry of `choices` closest to the string `value`, or None if none is close.

    Close = difflib's similarity ratio >= 0.6 (e.g. 'sofmax' -> 'softmax', 'sysyu' -> 'sysu').
    """
    if not isinstance(value, str):
        return None
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1)
    return close[0] if close else None


def did_you_mean(value: object, choices: Iterable[object]) -> str:
    """ " Did you mean 'softmax'?" for the `closest` of `choices` to `value`, else ''."""
    close = closest(value, choices)
    return f" Did you mean {close!r}?" if close is not None else ""
