"""Guided backpropagation activation maps (Springenberg et al. 2015; Hafner 2018, §4.2.5).

The gradient of an embedding with respect to the input image, where every ReLU passes a
gradient back only where its forward input was positive (the ordinary ReLU rule) *and* the
gradient arriving from above is positive (the "guidance": signals that would decrease the
activation are dropped). The thesis shows these maps for RGB and depth images side by side
(Hafner 2018, Figures 27-30, 32, 34 and 38; Figures 31, 33 and 35-37 between them are mAP
bar charts and embedding-size curves).

`guided_relu` has ReLU's forward pass and the guided backward pass. ResNet, its blocks and
ReIDNet take the non-linearity as their `activation` field, so

    guided_model = model.clone(activation=guided_relu)

computes the same outputs with the same variables, and its input gradients are the guided
backpropagation maps. Matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxreid import batching

from jaxreid.visualization.images import new_figure, save_png, show_image, to_display_rgb

# Keeps the gradient of the L2 norm finite at a zero embedding.
_NORM_EPS = 1e-12


@jax.custom_vjp
def guided_relu(x: jax.Array) -> jax.Array:
    """ReLU forward, max(x, 0); backward passes g only where x > 0 and g > 0."""
    return jnp.maximum(x, 0)


def _guided_relu_fwd(x):
    return jnp.maximum(x, 0), x


def _guided_relu_bwd(x, g):
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


def guided_backprop(
    model,
    variables,
    images,
    *,
    target: str | int = "norm",
    output: str | None = None,
    batch_size: int | None = None,
    modality: int | None = None,
) -> np.ndarray:
    """Guided-backpropagation gradients of a network's embedding w.r.t. its input images.

    Args:
      model: a flax module with an `activation` field whose __call__(x, train=...) returns
        (embedding, intermediates) or an array, e.g. `ReIDNet`, `BNNeckNet` or `ResNet`.
      variables: its variables ({'params': ..., 'batch_stats': ...}); eval mode is used.
      images: [N, H, W, C] float model inputs, preprocessed as for embedding.
      target: 'norm' — the L2 norm of each embedding; or an int — one embedding unit.
      output: take the target from `intermediates[output]` (e.g. 'pooled', 'logits',
        'layer4'; multi-dimensional maps are flattened per image) instead of the embedding.
      batch_size: images per compiled call (the last batch is padded); default all at once.
      modality: the images' slot in config.data.modalities (an int, the same for every
        image), passed to the model; needed by a two-stream backbone (`model.shared_from`),
        whose stems differ per modality.

    Returns:
      [N, H, W, C] float32 NumPy gradients. Images do not interact (BatchNorm uses its
      running statistics), so each image's map is the gradient of its own target.
    """
    if not hasattr(model, "activation"):
        raise TypeError(
            f"guided_backprop: {type(model).__name__} has no `activation` field to replace "
            f"with guided_relu; expected a module like ReIDNet or ResNet"
        )
    if not (
        target == "norm" or (isinstance(target, (int, np.integer)) and not isinstance(target, bool))
    ):
        raise ValueError(f"guided_backprop: target must be 'norm' or an int unit, got {target!r}")
    guided = model.clone(activation=guided_relu)
    x_all = np.asarray(images, np.float32)
    if x_all.ndim < 2:
        raise ValueError(f"guided_backprop: expected images [N, ...], got shape {x_all.shape}")

    call_kwargs = {} if modality is None else {"modality": int(modality)}

    def objective(x):
        out = guided.apply(variables, x, train=False, **call_kwargs)
        if output is not None:
            if not isinstance(out, tuple) or output not in out[1]:
                have = sorted(out[1]) if isinstance(out, tuple) else []
                raise KeyError(
                    f"guided_backprop: output {output!r} not among the model's intermediates {have}"
                )
            emb = out[1][output]
        else:
            emb = out[0] if isinstance(out, tuple) else out
        emb = emb.reshape(emb.shape[0], -1).astype(jnp.float32)
        if target == "norm":
            per_image = jnp.sqrt(jnp.sum(emb * emb, axis=1) + _NORM_EPS)
        else:
            if not 0 <= int(target) < emb.shape[1]:
                raise ValueError(
                    f"guided_backprop: target unit {target} out of range for "
                    f"an output of size {emb.shape[1]}"
                )
            per_image = emb[:, int(target)]
        return jnp.sum(per_image)

    grad_fn = jax.jit(jax.grad(objective))
    n = x_all.shape[0]
    out = batching.map_padded(
        lambda batch: grad_fn(jnp.asarray(batch)),
        x_all,
        batch_size=n if batch_size is None else max(1, int(batch_size)),
    )
    return np.empty_like(x_all) if out is None else out


def activation_map(gradients) -> np.ndarray:
    """[N, H, W, C] (or one [H, W, C]) gradients -> [N, H, W] (or [H, W]) float32 in [0, 1]:
    the maximum of |gradient| over channels, divided by its maximum per image (all-zero
    gradients give an all-zero map)."""
    g = np.abs(np.asarray(gradients, np.float32))
    single = g.ndim == 3
    if single:
        g = g[None]
    if g.ndim != 4:
        raise ValueError(f"activation_map: expected gradients [N, H, W, C], got {g.shape}")
    m = g.max(axis=-1)
    peak = m.reshape(m.shape[0], -1).max(axis=1)
    m = np.where(peak[:, None, None] > 0, m / np.maximum(peak, 1e-30)[:, None, None], 0.0)
    m = m.astype(np.float32)
    return m[0] if single else m


def _map_columns(maps, name: str, n: int) -> list[tuple[str | None, np.ndarray]]:
    items = list(maps.items()) if isinstance(maps, Mapping) else [(None, maps)]
    columns = []
    for label, value in items:
        value = np.asarray(value, np.float32)
        if value.ndim == 3:  # already [N, H, W]
            value = value[..., None]
        reduced = activation_map(value)
        if reduced.shape[0] != n:
            raise ValueError(
                f"plot_activation_maps: {name} has {reduced.shape[0]} maps for {n} images"
            )
        columns.append((label, reduced))
    return columns


def plot_activation_maps(
    rgb_images,
    depth_images,
    rgb_maps,
    depth_maps,
    path,
    *,
    title: str | None = None,
    map_cmap: str = "gray",
    depth_cmap: str | None = None,
    panel_size: tuple[float, float] = (1.0, 2.0),
    dpi: float = 100,
) -> str:
    """Writes RGB and depth images side by side with their activation maps to a PNG file.

    One row per example: [RGB image | RGB map(s) | depth image | depth map(s)], as the
    thesis's gradient images (Hafner 2018, Figures 27-30, 32, 34, 38). Either modality may be
    None.

    Args:
      rgb_images: [N, H, W, 3] uint8 (or float in [0, 1]) images, or None.
      depth_images: [N, H, W, 1] uint16 / uint8 depth (or any single-channel modality;
        zeros are holes, drawn black), or None.
      rgb_maps: guided-backprop gradients [N, H, W, C] of the RGB images (reduced here to
        the max of |gradient| over channels, normalised per image), an already reduced
        [N, H, W] map, or {column title: gradients} for several networks in adjacent
        columns (Hafner 2018, Figure 38). None when rgb_images is None.
      depth_maps: the same for the depth images.
      path: output PNG file.
      title: figure title.
      map_cmap: colormap of the activation maps (0 = black, strongest = white for 'gray').
      depth_cmap: colormap of the depth images (default: 'viridis' for uint16, else gray).
      panel_size: (width, height) inches per panel.
      dpi: PNG resolution.

    Returns:
      `path` as a string. The PNG is round(columns * panel_size[0] * dpi) x
      round((N * panel_size[1] + (TITLE_HEIGHT if title else 0)) * dpi) pixels, columns =
      for each given modality 1 + its number of map columns.
    """
    groups = []
    n = None
    for name, images, maps in (("rgb", rgb_images, rgb_maps), ("depth", depth_images, depth_maps)):
        if images is None:
            if maps is not None:
                raise ValueError(f"plot_activation_maps: {name}_maps given without {name}_images")
            continue
        if maps is None:
            raise ValueError(f"plot_activation_maps: {name}_images given without {name}_maps")
        count = len(images)
        if n is not None and count != n:
            raise ValueError(f"plot_activation_maps: {n} RGB images but {count} depth images")
        n = count
        groups.append((name, images, _map_columns(maps, f"{name}_maps", count)))
    if not groups or n == 0:
        raise ValueError("plot_activation_maps: no images given")

    num_columns = sum(1 + len(columns) for _, _, columns in groups)
    fig = new_figure(num_columns, n, panel_size, title)
    axes = fig.subplots(n, num_columns, squeeze=False)
    for row in range(n):
        col = 0
        for name, images, columns in groups:
            heading = ("RGB" if name == "rgb" else "depth") if row == 0 else None
            cmap = depth_cmap if name == "depth" else None
            show_image(axes[row, col], to_display_rgb(images[row], cmap=cmap), heading)
            col += 1
            for label, maps in columns:
                heading = (label or "guided backprop") if row == 0 else None
                show_image(axes[row, col], _colormap(maps[row], map_cmap), heading)
                col += 1
    return save_png(fig, path, dpi)


def _colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    """[H, W] in [0, 1] -> [H, W, 3] float32 (no per-image re-normalisation, 0 stays 0)."""
    from matplotlib import colormaps

    return colormaps[cmap](np.clip(values, 0.0, 1.0))[..., :3].astype(np.float32)
