"""Kinds of rule a config value must satisfy, for the table in `jaxreid.config.validation`.

Every rule is a small frozen dataclass with one method, `problem(value, config)`, that returns
None when `value` is fine and otherwise what was expected, e.g. "expected one of ('sgd',
'momentum', 'adam'). Did you mean 'adam'?"; the caller prefixes `config.<key>=<value>: `.
`config` is the whole config, for rules whose allowed values depend on other keys (the model's
named outputs depend on its head and loss).

Numbers: `Integer` accepts Python and NumPy ints but not bools; `Number` accepts ints and
floats but not bools, and never NaN or infinity.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from jaxreid.config.errors import did_you_mean

Choices = Sequence[str] | Callable[[Any], Sequence[str]]


def _choices(choices: Choices, config: Any) -> tuple[str, ...]:
    return tuple(choices(config) if callable(choices) else choices)


def _context(context: Callable[[Any], str] | None, config: Any) -> str:
    return f" ({context(config)})" if context else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return "any value"


@dataclasses.dataclass(frozen=True)
class OneOf:
    """A string from `choices` (a sequence, or a function of the config returning one);
    `context(config)` says, for choices that depend on other keys, which ones."""

    choices: Choices
    context: Callable[[Any], str] | None = None
    # Former values and what replaced them, e.g. {'hafner': "split into 'hafner_text' and
    # 'hafner_code'"}: refused with that note instead of a close-match guess.
    retired: tuple[tuple[str, str], ...] = ()

    def problem(self, value, config) -> str | None:
        choices = _choices(self.choices, config)
        if isinstance(value, str) and value in choices:
            return None
        where = _context(self.context, config)
        note = dict(self.retired).get(value) if isinstance(value, str) else None
        if note:
            return f"expected one of {choices}{where}; {value!r} is no longer accepted: {note}."
        return f"expected one of {choices}{where}.{did_you_mean(value, choices)}"


@dataclasses.dataclass(frozen=True)
class TupleOf:
    """A tuple of `min_len`..`max_len` distinct strings from `choices` (as in `OneOf`)."""

    choices: Choices
    min_len: int = 0
    max_len: int | None = None
    context: Callable[[Any], str] | None = None

    def problem(self, value, config) -> str | None:
        choices = _choices(self.choices, config)
        size = (
            f"{self.min_len} to {self.max_len}"
            if self.max_len is not None
            else f"at least {self.min_len}"
        )
        expected = f"expected a tuple of {size} distinct values from {choices}" + _context(
            self.context, config
        )
        if not isinstance(value, (tuple, list)):
            return f"{expected}, e.g. {tuple(choices[: self.min_len or 1])}."
        for item in value:
            if item not in choices:
                return f"{expected}; {item!r} is not one.{did_you_mean(item, choices)}"
        if len(set(value)) != len(value):
            return f"{expected}; it repeats a value."
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return f"{expected}; it has {len(value)}."
        return None


@dataclasses.dataclass(frozen=True)
class Integer:
    """An int in [low, high] (None = unbounded)."""

    low: int | None = None
    high: int | None = None

    def problem(self, value, config) -> str | None:
        ok = _is_int(value)
        ok = ok and (self.low is None or value >= self.low)
        ok = ok and (self.high is None or value <= self.high)
        if ok:
            return None
        return f"expected an int {_interval(self.low, self.high, False, False)}."


@dataclasses.dataclass(frozen=True)
class Number:
    """A finite int or float between low and high; `*_open` excludes the bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value, config) -> str | None:
        ok = _is_number(value) and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if ok:
            return None
        interval = _interval(self.low, self.high, self.low_open, self.high_open)
        return f"expected a finite number {interval}."


@dataclasses.dataclass(frozen=True)
class Boolean:
    """True or False."""

    def problem(self, value, config) -> str | None:
        return None if isinstance(value, bool) else "expected True or False."


@dataclasses.dataclass(frozen=True)
class Text:
    """Any string (paths, split names); `nonempty` rejects ''."""

    nonempty: bool = False

    def problem(self, value, config) -> str | None:
        if isinstance(value, str) and (value or not self.nonempty):
            return None
        return "expected a non-empty string." if self.nonempty else "expected a string."


@dataclasses.dataclass(frozen=True)
class IntTuple:
    """A tuple of `length` ints, each >= `low`, e.g. an image size (height, width)."""

    length: int
    low: int = 1
    example: tuple = ()

    def problem(self, value, config) -> str | None:
        if (
            isinstance(value, (tuple, list))
            and len(value) == self.length
            and all(_is_int(v) and v >= self.low for v in value)
        ):
            return None
        example = f", e.g. {self.example}" if self.example else ""
        return f"expected a tuple of {self.length} ints >= {self.low}{example}."


@dataclasses.dataclass(frozen=True)
class IncreasingInts:
    """A tuple of strictly increasing ints >= `low` (possibly empty), e.g. epochs."""

    low: int = 0

    def problem(self, value, config) -> str | None:
        if (
            isinstance(value, (tuple, list))
            and all(_is_int(v) and v >= self.low for v in value)
            and all(a < b for a, b in zip(value, value[1:]))
        ):
            return None
        return f"expected a tuple of strictly increasing ints >= {self.low}, e.g. (20, 50)."


@dataclasses.dataclass(frozen=True)
class Fractions:
    """A tuple of strictly increasing numbers in (0, 1), e.g. fractions of training."""

    def problem(self, value, config) -> str | None:
        if (
            isinstance(value, (tuple, list))
            and all(_is_number(v) and 0 < v < 1 for v in value)
            and all(a < b for a, b in itertools.pairwise(value))
        ):
            return None
        return "expected a tuple of strictly increasing numbers in (0, 1), e.g. (0.5, 0.75)."


Rule = OneOf | TupleOf | Integer | Number | Boolean | Text | IntTuple | Fractions
