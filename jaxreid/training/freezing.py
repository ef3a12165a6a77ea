"""Which layers of a network are frozen (distillation Step II, Hafner 2018 §3.3).

The network defines its own structure: `model.layer_order()` lists its layers in forward order
(jaxreid.models). A freezing point names one of them; it and every layer after it are frozen.
Nothing here knows layer names beyond the syntax of config.distill.freeze_from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxreid import models
from jaxreid.config import architecture

# The freezing points and their syntax are the config's vocabulary (validation resolves them
# without building the network): jaxreid.config.architecture.
AUTO_FREEZE_FROM = architecture.AUTO_FREEZE_FROM
FREEZE_SYNTAX = architecture.FREEZE_SYNTAX
_display = architecture.display_path


def layer_index(order: Sequence[tuple[str, ...]], path: Sequence[str]) -> int | None:
    """Index in `order` of the layer that holds the module or parameter at `path` (the
    longest entry of `order` that is a prefix of `path`), or None."""
    path = tuple(path)
    for length in range(len(path), 0, -1):
        try:
            return order.index(path[:length])
        except ValueError:
            continue
    return None


def freeze_index(model: nn.Module, freeze_from: str, backbone: str) -> int | None:
    """Index in `model.layer_order()` of the first frozen layer, or None for 'none'
    (`jaxreid.config.architecture.freeze_index` on this network's layer order).

    Args:
      freeze_from: config.distill.freeze_from (syntax: FREEZE_SYNTAX).
      backbone: config.model.backbone (for 'auto').

    Raises:
      ValueError: naming the value, the syntax, and the network's layers when none matches.
    """
    return architecture.freeze_index(model.layer_order(), freeze_from, backbone)


def frozen_mask(model: nn.Module, params, index: int | None, freeze_from: str = ""):
    """A pytree like `params` with Python bools: True for the parameters of frozen layers.

    Args:
      model: the network (its `layer_order()`).
      params: its parameters.
      index: from `freeze_index`; None freezes nothing.
      freeze_from: the config value, for the error message.

    Raises:
      ValueError: the freezing point is a layer without parameters in this network (e.g.
        'embedding' with embedding_size 0), or a parameter belongs to no listed layer.
    """
    order = model.layer_order()

    def module_path(key_path):
        return tuple(k.key for k in key_path[:-1])  # Drop the leaf name ('kernel', ...).

    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    indices = {}
    for key_path, _ in flat:
        path = module_path(key_path)
        found = layer_index(order, path)
        if found is None:
            raise ValueError(
                f"Parameter {'/'.join(path)} belongs to no layer of {type(model).__name__}."
                "layer_order(); the model must list every layer it creates."
            )
        indices[path] = found
    if index is not None and index not in indices.values():
        have = ", ".join(_display(order[i]) for i in sorted(set(indices.values())))
        raise ValueError(
            f"config.distill.freeze_from={freeze_from!r} names no layer with parameters in "
            f"this network; its layers are: {have}."
        )
    return jax.tree_util.tree_map_with_path(
        lambda kp, _: index is not None and indices[module_path(kp)] >= index, params
    )


@contextlib.contextmanager
def frozen_layers_in_inference_mode(model: nn.Module, index: int | None):
    """Within the context, `model`'s BatchNorm layers at or after layer `index` normalise with
    their running statistics (and do not update them), and its dropout there is off, even
    when the network is applied with train=True (config.distill.frozen_bn='fixed').
    """
    if index is None:
        yield
        return
    order = model.layer_order()

    def frozen(module):
        found = layer_index(order, module.path)
        return found is not None and found >= index

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name != "__call__" or not module.path:
            return next_fun(*args, **kwargs)
        if isinstance(module, models.BatchNorm) and frozen(module):
            if len(args) > 1:  # BatchNorm.__call__(x, train)
                args = (args[0], False, *args[2:])
            else:
                kwargs = {**kwargs, "train": False}
        elif isinstance(module, nn.Dropout) and frozen(module):
            return args[0] if args else kwargs["inputs"]  # Dropout in inference mode.
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        yield
