"""Loading a config file and applying `key=value` overrides: the one way to do both.

  config = load_config("configs/synthetic.py:quick")       # the file's get_config('quick')
  apply_overrides(config, {"optim.learning_rate": "0.01"})  # or ["optim.learning_rate=0.01"]
  overrides, rest = overrides_from_argv(sys.argv)          # --config.optim.learning_rate=0.01
  apply_overrides(config, overrides)

A relative config path is looked up in the current directory, then in the repository root
(the directory above the `jaxreid` package), so `configs/synthetic.py` works from anywhere in
a checkout. Override values are parsed with the type of the value they replace, as
ml_collections' `config_flags` parses `--config.<key>=<value>` flags.
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import os
import types
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from jaxreid.config import schema
from jaxreid.config.errors import ConfigError, closest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_TYPE_NAMES = {bool: "a bool (true or false)", int: "an int", float: "a float", tuple: "a tuple"}


def find_file(path: str, what: str = "config file", listing: str = "configs/*.py") -> str:
    """`path` as given if it exists, else relative to the repository root.

    Raises:
      ConfigError: neither exists; the message lists the repository's files matching
        `listing` (a glob relative to the repository root).
    """
    candidates = [path]
    if not os.path.isabs(path):
        candidates.append(os.path.join(REPO_ROOT, path))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    found = sorted(
        os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, listing))
    )
    raise ConfigError(
        f"No {what} {path!r} (looked in {' and '.join(dict.fromkeys([os.getcwd(), REPO_ROOT]))}). "
        f"The {what}s of the repository: {', '.join(found) or 'none'}."
    )


def import_file(
    path: str, what: str = "config file", listing: str = "configs/*.py"
) -> types.ModuleType:
    """Executes the Python file `path` (found by `find_file`) as a fresh module."""
    path = find_file(path, what, listing)
    name = "jaxreid_file_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_spec(spec: str) -> tuple[str, str]:
    """'configs/tekeli.py:fc,quick' -> ('configs/tekeli.py', 'fc,quick'); no ':' -> arg ''."""
    head, sep, arg = spec.partition(".py:")
    if sep:
        return head + ".py", arg
    return spec, ""


def load_config(spec: str) -> ml_collections.ConfigDict:
    """The config of `spec` = 'path/to/config.py[:arg]': the file's `get_config(arg)`.

    The config is not validated (call `validate` with the device count once it is known).

    Raises:
      ConfigError: the file does not exist (the message lists configs/), defines no
        `get_config`, returns no ConfigDict, sets a removed key (`schema.REMOVED_KEYS`), or
        rejects `arg` (its ValueError, prefixed with the spec).
    """
    path, arg = split_spec(spec)
    module = import_file(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"Config file {path!r} defines no get_config(arg).")
    try:
        config = module.get_config(arg)
    except ValueError as e:
        raise ConfigError(f"--config={spec}: {e}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"{path}: get_config({arg!r}) returned {type(config).__name__}, not a ConfigDict."
        )
    for key in schema.REMOVED_KEYS:
        group, _, leaf = key.rpartition(".")
        if leaf in config.get(group, {}):
            raise ConfigError(f"{path}: {schema.removed_key_message(key)}")
    return config


def overrides_from_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Splits a command line into its `--config.<key>=<value>` flags, as {'<key>': '<value>'},
    and the other arguments in order (for absl, which would reject the undefined flags).

    Also `--config.<key> <value>`, and for a boolean key of the schema `--config.<key>` (True)
    and `--noconfig.<key>` (False), as absl's flags take them. `--config=<file>` is one of the
    other arguments; a key given twice keeps the later value.
    """
    defaults = schema.default_config()
    out, rest = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        negated = arg.startswith("--noconfig.")
        if not (arg.startswith("--config.") or negated):
            rest.append(arg)
            continue
        key, sep, value = arg.split(".", 1)[1].partition("=")
        if negated:
            out[key] = "false"
        elif sep:
            out[key] = value
        elif _is_bool(defaults, key) or i >= len(argv) or argv[i].startswith("--"):
            out[key] = "true"
        else:
            out[key] = argv[i]
            i += 1
    return out, rest


def _is_bool(config, key: str) -> bool:
    try:
        return isinstance(_node_and_leaf(config, key)[0][key.rsplit(".", 1)[-1]], bool)
    except ConfigError:
        return False


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Mapping[str, Any] | Sequence[str]
) -> ml_collections.ConfigDict:
    """Sets `config`'s keys in place from {'optim.learning_rate': '0.01'} or
    ['optim.learning_rate=0.01', ...]; returns `config`.

    A string value is parsed with the type of the value it replaces: int, float, bool
    ('true'/'false', '1'/'0', 'yes'/'no'), str (as is), tuple (a Python literal such as
    '(64, 32)' or "('rgb', 'depth')", or comma-separated words 'rgb,depth'; a single value
    becomes a 1-tuple, as config_flags does). Values that are not strings are used as they are
    (a list for a tuple key becomes a tuple, an int for a float key a float).

    Raises:
      ConfigError: an unknown key (naming the close match and the valid keys), an item
        without '=', or a value that does not parse as the key's type.
    """
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            key, sep, text = item.partition("=")
            if not sep:
                raise ConfigError(
                    f"Override {item!r}: expected key=value, e.g. optim.learning_rate=0.01."
                )
            items.append((key, text))
    for key, value in items:
        key = key.removeprefix("config.")
        node, leaf = _node_and_leaf(config, key)
        current = node[leaf]
        new = _parse(value, current, key) if isinstance(value, str) else _coerce(value, current)
        try:
            node[leaf] = new
        except (TypeError, ValueError) as e:
            kind = _TYPE_NAMES.get(type(current), type(current).__name__)
            raise ConfigError(f"config.{key}={new!r}: expected {kind} ({e}).") from None
    return config


def _node_and_leaf(config: ml_collections.ConfigDict, key: str):
    """(the group holding `key`, the key's last part); ConfigError for an unknown key."""
    if key in schema.REMOVED_KEYS:
        raise ConfigError(schema.removed_key_message(key))
    parts = key.split(".")
    parent, node, prefix = None, config, "config"
    for part in parts:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            close = closest(part, valid)
            hint = f" Did you mean {prefix}.{close}?" if close else ""
            where = f" (in config.{key})" if f"{prefix}.{part}" != f"config.{key}" else ""
            raise ConfigError(
                f"Unknown config key {prefix}.{part}{where}.{hint} "
                f"Valid keys of {prefix}: " + ", ".join(valid)
            )
        parent, node, prefix = node, node[part], f"{prefix}.{part}"
    if isinstance(node, ml_collections.ConfigDict):
        keys = sorted(node.keys())
        raise ConfigError(
            f"config.{key} is a group of keys ({', '.join(keys)}); override one of them, "
            f"e.g. config.{key}.{keys[0]}=..."
        )
    return parent, parts[-1]


def _parse(text: str, current: Any, key: str) -> Any:
    """`text` as a value of the type of `current` (config_flags' parsers, see module doc)."""
    kind = type(current)
    try:
        if kind is bool:
            if text.lower() in _TRUE + _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if kind is tuple:
            return _parse_tuple(text)
    except (ValueError, SyntaxError):
        raise ConfigError(
            f"config.{key}={text!r}: expected {_TYPE_NAMES.get(kind, kind.__name__)}, like the "
            f"current value {current!r}."
        ) from None
    return _literal(text)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # A bare word, e.g. a path.


def _parse_tuple(text: str) -> tuple:
    value = _literal(text)
    if value is text and "," in text:  # Bare words: 'rgb,depth' -> ('rgb', 'depth').
        return tuple(_literal(part.strip()) for part in text.split(",") if part.strip())
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)  # config_flags: a single value is a 1-tuple ('64' -> (64,)).


def _coerce(value: Any, current: Any) -> Any:
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
