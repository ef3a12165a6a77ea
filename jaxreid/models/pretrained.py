"""torchvision ResNet state dict -> flax variables for `jaxreid.models.resnet.ResNet`.

Key mapping (torchvision -> jaxreid, collection):

    conv1.weight [O,I,kh,kw]             -> params/conv1/kernel [kh,kw,I,O]
    bn1.weight / bn1.bias                -> params/bn1/scale, params/bn1/bias
    bn1.running_mean / bn1.running_var   -> batch_stats/bn1/mean, batch_stats/bn1/var
    layer{i}.{j}.conv{k}.*, bn{k}.*      -> layer{i}_{j}/conv{k}, layer{i}_{j}/bn{k}
    layer{i}.{j}.downsample.0.weight     -> layer{i}_{j}/downsample_conv/kernel
    layer{i}.{j}.downsample.1.*          -> layer{i}_{j}/downsample_bn
    fc.*, *.num_batches_tracked          -> dropped

Input-layer adaptation (`channel_map`, one entry per input channel of the new conv1):
an int k in {0, 1, 2} copies torchvision's kernel for input channel k (R, G, B); 'gray'
uses the sum of the three RGB kernels, which on a single-channel image x equals the
original network on the 3-channel image (x, x, x).
  * in_channels=3, default ('R','G','B' = (0, 1, 2)): unchanged. This is also the thesis
    author's zero-padding network (Hafner 2018 §5.2.2): 3 channels kept, modality 1 as
    grayscale in R, modality 2 in B, G zero (PreprocessorZP in the author's open-reid code).
  * in_channels=1, default ('gray',): depth / infrared / grayscale input.
  * in_channels=2, default ('gray', 'gray'): Wu et al. 2017's two-channel zero-padding
    input (one channel per modality, the other zero), each channel from the gray kernel.
  Other layouts: pass channel_map explicitly, e.g. (0, 'gray').
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreid.models import BACKBONES

GRAY = "gray"
_DEFAULT_CHANNEL_MAPS = {1: (GRAY,), 2: (GRAY, GRAY), 3: (0, 1, 2)}

_BN_LEAVES = {
    "weight": ("params", "scale"),
    "bias": ("params", "bias"),
    "running_mean": ("batch_stats", "mean"),
    "running_var": ("batch_stats", "var"),
}


def _read_state_dict(path: str, key_prefix: str) -> dict[str, np.ndarray]:
    """Reads a state dict from .pth/.pt, .safetensors or .npz into float32 NumPy arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Pretrained weights file not found: {path}")
    if path.endswith((".pth", ".pt", ".pth.tar")):
        try:
            import torch  # Lazy: only needed to read PyTorch pickles.
        except ImportError as err:
            raise ImportError(
                f"Reading {path} needs PyTorch (pip install torch), or convert it to "
                ".npz/.safetensors first"
            ) from err
        raw = torch.load(path, map_location="cpu", weights_only=True)
        if (
            isinstance(raw, Mapping)
            and "state_dict" in raw
            and isinstance(raw["state_dict"], Mapping)
        ):
            raw = raw["state_dict"]  # Training checkpoints wrap the weights.
        # .float() first: NumPy has no bfloat16, and half-precision files exist.
        state = {
            k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).numpy()
            for k, v in raw.items()
            if isinstance(v, torch.Tensor)
        }
    elif path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file  # Lazy optional dependency.
        except ImportError as err:
            raise ImportError(
                f"Reading {path} needs safetensors (pip install safetensors)"
            ) from err
        state = dict(load_file(path))
    elif path.endswith(".npz"):
        with np.load(path) as data:
            state = {k: data[k] for k in data.files}
    else:
        raise ValueError(
            f"Unsupported weights file {path}: expected .pth/.pt, .safetensors or .npz"
        )

    if key_prefix:
        state = {k[len(key_prefix) :]: v for k, v in state.items() if k.startswith(key_prefix)}
        if not state:
            raise ValueError(f"No keys in {path} start with key_prefix {key_prefix!r}")
    return state


def _torch_key(flax_path: tuple[str, ...], collection: str) -> str:
    """('layer1_0', 'downsample_bn', 'scale') in 'params' -> 'layer1.0.downsample.1.weight'."""
    *modules, leaf = flax_path
    parts = []
    for module in modules:
        block = re.fullmatch(r"(layer\d+)_(\d+)", module)
        if block:
            parts += [block.group(1), block.group(2)]
        elif module == "downsample_conv":
            parts += ["downsample", "0"]
        elif module == "downsample_bn":
            parts += ["downsample", "1"]
        else:
            parts.append(module)
    torch_leaf = {
        ("params", "kernel"): "weight",
        ("params", "scale"): "weight",
        ("params", "bias"): "bias",
        ("batch_stats", "mean"): "running_mean",
        ("batch_stats", "var"): "running_var",
    }[(collection, leaf)]
    return ".".join(parts + [torch_leaf])


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix + (key,)))
        else:
            flat[prefix + (key,)] = value
    return flat


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def _adapt_conv1(kernel: np.ndarray, channel_map: Sequence[int | str], path: str) -> np.ndarray:
    """kernel [kh, kw, 3, O] -> [kh, kw, len(channel_map), O]."""
    if kernel.shape[2] != 3:
        raise ValueError(
            f"{path}: conv1.weight has {kernel.shape[2]} input channels; channel_map "
            "adaptation expects torchvision's 3 (RGB)"
        )
    columns = []
    for entry in channel_map:
        if isinstance(entry, str) and entry == GRAY:
            columns.append(kernel.sum(axis=2))
        elif isinstance(entry, (int, np.integer)) and 0 <= entry < 3:
            columns.append(kernel[:, :, int(entry)])
        else:
            raise ValueError(
                f"channel_map entry {entry!r} invalid: expected 0, 1, 2 (R, G, B) or 'gray'"
            )
    return np.stack(columns, axis=2)


def _refuse_differences(what: str, key_lists: dict[str, list], mismatched: list[str]) -> None:
    """ValueError '<what>: <label>: [keys] | ... | shape mismatches: a; b' when any list of
    keys (missing, unexpected) or shape mismatch is non-empty; the labels say which side."""
    problems = [f"{label}: {keys}" for label, keys in key_lists.items() if keys]
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched))
    if problems:
        raise ValueError(f"{what}: " + " | ".join(problems))


def load_torchvision_resnet(
    path: str,
    arch: str,
    *,
    in_channels: int = 3,
    channel_map: Sequence[int | str] | None = None,
    key_prefix: str = "",
) -> dict[str, dict]:
    """Converts a torchvision ResNet state dict into jaxreid ResNet variables.

    Args:
      path: .pth/.pt (read with torch.load(weights_only=True); a {'state_dict': ...}
        checkpoint is unwrapped), .safetensors or .npz, with torchvision's key names and
        torch layouts.
      arch: 'resnet18' | 'resnet34' | 'resnet50'.
      in_channels: input channels of the converted conv1 (see module docstring).
      channel_map: per-input-channel source of conv1's kernel (see module docstring);
        default depends on in_channels (1: ('gray',), 2: ('gray', 'gray'), 3: (0, 1, 2)).
      key_prefix: stripped from the keys, e.g. 'base.' for the thesis author's open-reid
        checkpoints (keys without the prefix are ignored).

    Returns:
      {'params': ..., 'batch_stats': ...} float32 NumPy trees for a full-width
      (num_filters=64) jaxreid ResNet of `arch`; merge into a model with `merge_into`.

    Raises:
      ValueError: unknown arch, missing/unexpected keys or shape mismatches (all listed,
        each naming the torchvision key and both shapes).
    """
    if arch not in BACKBONES:
        raise ValueError(f"Unknown arch {arch!r}; valid names: {', '.join(sorted(BACKBONES))}")
    if channel_map is None:
        if in_channels not in _DEFAULT_CHANNEL_MAPS:
            raise ValueError(
                f"in_channels={in_channels} has no default channel_map; pass channel_map "
                "with one entry (0, 1, 2 or 'gray') per input channel"
            )
        channel_map = _DEFAULT_CHANNEL_MAPS[in_channels]
    channel_map = tuple(channel_map)
    if len(channel_map) != in_channels:
        raise ValueError(
            f"channel_map {channel_map} has {len(channel_map)} entries, in_channels is "
            f"{in_channels}"
        )

    state = _read_state_dict(path, key_prefix)

    # Expected names and shapes come from the model itself (abstract init, no compute).
    model = BACKBONES[arch]()
    shapes = jax.eval_shape(
        lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False)
    )
    expected = {}  # torch key -> (collection, flax path, expected torch-layout shape)
    for collection in ("params", "batch_stats"):
        for flax_path, leaf in _flatten(shapes[collection]).items():
            shape = tuple(leaf.shape)
            if len(shape) == 4:  # HWIO -> OIHW
                shape = (shape[3], shape[2], shape[0], shape[1])
            expected[_torch_key(flax_path, collection)] = (collection, flax_path, shape)

    ignored = {k for k in state if k.startswith("fc.") or k.endswith(".num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected) - ignored)
    mismatched = [
        f"{key}: file {tuple(state[key].shape)} vs {arch} {expected[key][2]}"
        for key in sorted(set(expected) & set(state))
        if tuple(state[key].shape) != expected[key][2]
    ]
    _refuse_differences(
        f"{path} does not match torchvision {arch}",
        {"missing keys": missing, "unexpected keys": unexpected},
        mismatched,
    )

    flat: dict[str, dict] = {"params": {}, "batch_stats": {}}
    for key, (collection, flax_path, _) in expected.items():
        value = np.asarray(state[key], dtype=np.float32)
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
            if flax_path == ("conv1", "kernel"):
                value = _adapt_conv1(value, channel_map, path)
        flat[collection][flax_path] = value
    return {collection: _unflatten(leaves) for collection, leaves in flat.items()}


def merge_into(
    variables: Mapping[str, Any],
    pretrained: Mapping[str, Any],
    prefix: Sequence[str] = ("backbone",),
) -> dict[str, Any]:
    """Returns `variables` with the subtree at `prefix` replaced by `pretrained`.

    Args:
      variables: a model's initialised variables, e.g. {'params': {'backbone': ...,
        'embedding': ...}, 'batch_stats': {...}}. Not modified.
      pretrained: output of `load_torchvision_resnet` ({'params', 'batch_stats'}).
      prefix: path of the backbone inside each collection; () for a bare ResNet.

    Layers that the torchvision ResNet lacks are mapped or kept: a modality-specific copy
    (`modality<m>_conv1`, `modality<m>_layer1_0`, ...; a partially shared two-stream ResNet)
    takes the pretrained weights of the layer it copies (AGW initialises both streams from
    ImageNet), and non-local blocks (`non_local<i>_<k>`, `modality<m>_non_local<i>_<k>`) and
    a learnable GeM exponent keep their initialisation (a zero-initialised non-local block
    is the identity, so the pretrained function is kept).

    Returns:
      New variables dict; replaced leaves are jnp arrays in the target leaf's dtype,
      everything else is the original object.

    Raises:
      ValueError: listing keys missing from `pretrained`, keys of `pretrained` absent from
        the model, and shape mismatches (key, pretrained shape, model shape).
    """
    prefix = tuple(prefix)
    missing, unexpected, mismatched = [], [], []
    new_subtrees = {}
    for collection, tree in pretrained.items():
        node = variables.get(collection)
        for key in prefix:
            node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            raise ValueError(
                f"merge_into: model variables have no {collection}/{'/'.join(prefix)} "
                "subtree to replace"
            )
        target = _flatten(node)
        source = _flatten(tree)
        # Model path -> pretrained path; None = a new layer that keeps its initialisation.
        origin = {path: _pretrained_origin(path) for path in target}
        name = lambda path: "/".join((collection,) + prefix + path)  # noqa: E731
        used = {o for o in origin.values() if o is not None}
        missing += [
            name(p) for p in sorted(target) if origin[p] is not None and origin[p] not in source
        ]
        unexpected += [name(p) for p in sorted(set(source) - used)]
        for path in sorted(target):
            o = origin[path]
            if (
                o is not None
                and o in source
                and tuple(np.shape(source[o])) != tuple(target[path].shape)
            ):
                mismatched.append(
                    f"{name(path)}: pretrained {tuple(np.shape(source[o]))} vs model "
                    f"{tuple(target[path].shape)}"
                )
        new_subtrees[collection] = _unflatten(
            {
                path: target[path]
                if origin[path] is None
                else jnp.asarray(source[origin[path]], dtype=target[path].dtype)
                for path in target
                if origin[path] is None or origin[path] in source
            }
        )
    _refuse_differences(
        "merge_into", {"missing from pretrained": missing, "not in model": unexpected}, mismatched
    )

    merged = dict(variables)
    for collection, subtree in new_subtrees.items():
        merged[collection] = _replace_at(variables[collection], prefix, subtree)
    return merged


def _replace_at(tree: Mapping[str, Any], prefix: tuple[str, ...], subtree: dict) -> dict:
    if not prefix:
        return subtree
    copy = dict(tree)
    copy[prefix[0]] = _replace_at(tree[prefix[0]], prefix[1:], subtree)
    return copy


_MODALITY_COPY = re.compile(r"modality\d+_(.+)")


def _pretrained_origin(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The torchvision-named path a model variable is loaded from, None for a new layer."""
    first = path[0]
    copy = _MODALITY_COPY.fullmatch(first)
    if copy:
        first = copy.group(1)
    if first.startswith("non_local") or first == "gem":
        return None
    return (first,) + tuple(path[1:])
