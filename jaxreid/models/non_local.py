"""Non-local attention block (Wang et al. 2018, "Non-local Neural Networks", CVPR), as the
AGW baseline inserts it into the ResNet stages (Ye et al. 2021, "Deep Learning for Person
Re-identification: A Survey and Outlook", TPAMI, §4.1; code `Non_local` in
github.com/mangye16/Cross-Modal-Re-ID-baseline model.py, read, not copied).

For an input x [N, H, W, C] with P = H * W positions:

    theta = x W_theta + b_theta,  phi = x W_phi + b_phi,  g = x W_g + b_g   (1x1 convs, C -> C')
    f     = theta phi^T / P           [N, P, P]  (the "dot product" pairwise function, §3.2,
                                                  normalised by the number of positions)
    y     = f g                        [N, P, C']
    z     = BN(y W_out + b_out) + x    [N, H, W, C]  (1x1 conv C' -> C, then BatchNorm)

The BatchNorm's scale and shift start at zero (Wang et al. 2018 §4.1), so a new block is the
identity and can be inserted into a pretrained network without changing its function.

C' = C // reduction (Wang et al. 2018: half the channels). Note: the AGW code computes its
inner width as `reduc_ratio // reduc_ratio`, i.e. C' = 1 for every block; jaxreid uses the
published C / 2 by default (`inter_channels` overrides it, e.g. 1 to match the code).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.config import architecture
from jaxreid.models.batch_norm import BatchNorm

Array = jax.Array


class NonLocal(nn.Module):
    """Residual non-local block, [N, H, W, C] -> [N, H, W, C] in `dtype`.

    Attributes:
      reduction: C' = max(C // reduction, 1) inner channels (Wang et al. 2018: 2).
      inter_channels: explicit C' (0 = from `reduction`).
      dtype: compute dtype of the convolutions and matmuls; the attention is accumulated
        in float32.

    Submodules: 'theta', 'phi', 'g', 'out' (1x1 convs with bias) and 'out_bn' (zero-initialised
    scale and shift).
    """

    reduction: int = 2
    inter_channels: int = 0
    dtype: Any = jnp.float32
    # Its layers in forward order (jaxreid.models.resnet.ResNet.layer_order).
    layers = architecture.NON_LOCAL_LAYERS

    @nn.compact
    def __call__(self, x: Array, train: bool, mask: Array | None = None) -> Array:
        """x: [N, H, W, C]; train/mask as `jaxreid.models.batch_norm.BatchNorm`."""

        n, h, w, c = x.shape
        inner = self.inter_channels or max(c // self.reduction, 1)
        conv = lambda features, name: nn.Conv(
            features, (1, 1), dtype=self.dtype, param_dtype=jnp.float32, name=name
        )
        theta = conv(inner, "theta")(x).reshape(n, h * w, inner)
        phi = conv(inner, "phi")(x).reshape(n, h * w, inner)
        g = conv(inner, "g")(x).reshape(n, h * w, inner)
        f = jnp.einsum("npc,nqc->npq", theta, phi, preferred_element_type=jnp.float32)
        f = f / (h * w)
        y = jnp.einsum("npq,nqc->npc", f.astype(self.dtype), g).reshape(n, h, w, inner)
        y = conv(c, "out")(y)
        y = BatchNorm(
            dtype=self.dtype,
            scale_init=nn.initializers.zeros,
            name="out_bn",
        )(y, train, mask)
        return (y + x.astype(y.dtype)).astype(self.dtype)
