"""BNNeck head (Luo et al. 2019, "Bag of Tricks and a Strong Baseline for Deep Person
Re-identification", CVPR-W, §3.4), as the AGW baseline uses it (Ye et al. 2021, TPAMI §4.1;
`bottleneck` in github.com/mangye16/Cross-Modal-Re-ID-baseline model.py, read, not copied):

    backbone -> pooled [N, F]          the metric (triplet) loss acts here
             -> BatchNorm without shift 'bnneck_bn'  => bnneck [N, F]
             -> [Dropout] -> Dense(C, no bias) 'classifier'  => logits [N, C] (softmax loss)

The BatchNorm has no learned shift (Luo et al. freeze its bias at 0, so the classifier's
hyperplanes pass through the origin), the classifier no bias. Retrieval may use either
feature; both are reported in the field (AGW's test code ranks both, L2-normalised):
the embedding returned is the feature after the BN ('bnneck'); `config.eval.feature='pooled'`
ranks the one before. Initialisation: BN scale 1 (AGW: N(1, 0.01)), classifier
N(0, 0.001^2) as in AGW's `weights_init_classifier`.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.models.reid import DROPOUT
from jaxreid.models.batch_norm import BatchNorm

Array = jax.Array

# config.eval.feature values that name the two BNNeck features (intermediates).
BNNECK_FEATURES = ("bnneck", "pooled")


class BNNeckNet(nn.Module):
    """Backbone + BNNeck + bias-free classifier.

    Attributes:
      backbone: a ResNet partial (as ReIDNet's), instantiated as the submodule 'backbone'.
      num_classes: classifier size C; 0 omits the classifier (pure metric-loss training).
      dropout_rate: dropout before the classifier (AGW: none, 0).
      dtype: compute dtype of the classifier; outputs are float32.
      activation: the backbone's non-linearity, passed to it only when not `nn.relu` (e.g.
        `jaxreid.visualization.guided_relu` for guided backpropagation; the head itself has
        none).
    """

    backbone: Callable[..., nn.Module]
    num_classes: int
    dropout_rate: float = 0.0
    dtype: jnp.dtype = jnp.float32
    activation: Callable[[Array], Array] = nn.relu

    def layer_order(self) -> list[tuple[str, ...]]:
        """Paths of its layers in forward order (jaxreid.training.freezing): the backbone's
        ('backbone', ...), then 'bnneck_bn', the classifier's dropout and 'classifier'."""
        backbone = self.backbone(parent=None)
        return [("backbone", *p) for p in backbone.layer_order()] + [
            ("bnneck_bn",),
            (DROPOUT,),
            ("classifier",),
        ]

    @nn.compact
    def __call__(
        self,
        x: Array,
        train: bool,
        labels: Array | None = None,
        modality: Array | int | None = None,
    ) -> tuple[Array, dict[str, Array]]:
        """Embeds images.

        Args:
          x: [N, H, W, C_in] float images.
          train: BatchNorm in batch-statistics mode, dropout on.
          labels: unused (the common re-id model signature).
          modality: passed to the backbone (see `jaxreid.models.resnet.ResNet`); only a
            partially shared two-stream backbone needs it.

        Returns:
          embedding: [N, F] float32, the BN-neck feature.
          intermediates: the backbone's, 'pooled' [N, F] (before the BN), 'bnneck' [N, F],
            'embedding' [N, F], and 'logits' [N, C] float32 when num_classes > 0.
        """
        if self.num_classes < 0:
            raise ValueError(f"BNNeckNet.num_classes must be >= 0, got {self.num_classes}")
        # Passed only when changed, as ReIDNet does.
        module_kwargs = {} if self.activation is nn.relu else {"activation": self.activation}
        call_kwargs = {} if modality is None else {"modality": modality}
        pooled, intermediates = self.backbone(name="backbone", **module_kwargs)(
            x, train, **call_kwargs
        )
        intermediates = dict(intermediates)
        intermediates["pooled"] = pooled.astype(jnp.float32)
        feature = BatchNorm(use_bias=False, name="bnneck_bn")(pooled, train).astype(jnp.float32)
        intermediates["bnneck"] = feature
        intermediates["embedding"] = feature
        if self.num_classes > 0:
            hidden = nn.Dropout(rate=self.dropout_rate, deterministic=not train)(feature)
            intermediates["logits"] = nn.Dense(
                self.num_classes,
                use_bias=False,
                dtype=self.dtype,
                param_dtype=jnp.float32,
                kernel_init=nn.initializers.normal(stddev=0.001),
                name="classifier",
            )(hidden).astype(jnp.float32)
        return feature, intermediates
