"""Re-identification head on a ResNet backbone (Hafner 2018, §2.2.2).

Layout, following the thesis author's PyTorch code (open-reid `reid/models/resnet.py` in
github.com/frhf/cross-modal-distillation-reidentification; read, not copied):

    backbone -> pooled [N, F]
      embedding_size = D (penultimate-layer embedding, Hafner 2018 Eq. 2):
        -> Dense(D) 'embedding' -> BatchNorm1d 'embedding_bn' -> ReLU  => embedding [N, D]
        -> Dropout(dropout_rate) -> Dense(C) 'classifier'               => logits [N, C]
      embedding_size = None (classification-layer embedding, Hafner 2018 Eq. 3):
        -> Dropout(dropout_rate) -> Dense(C) 'classifier'  => logits [N, C] = embedding

The author's code evaluates with the classifier switched off (`model.num_classes = 0`),
so the embedding is ReLU(BN(Dense(pooled))) taken *before* dropout; dropout only feeds the
classifier (in eval mode it is the identity either way). We return the pre-dropout
embedding in training too, so a triplet loss on it sees no dropout noise.

Initialisation as in the author's code: the embedding Dense is Kaiming-normal (fan_out),
its BN scale 1 / bias 0; the classifier is N(0, 0.001^2) with zero bias.

Hafner 2018 §4.3.2 uses embedding size 128 and dropout 0.5; §5.3 compares sizes
32, 128, 256, 512, 1024, 2048 and the size-C classification layer.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxreid.config import architecture
from jaxreid.models.batch_norm import BatchNorm

Array = jax.Array
Dtype = Any
# The dropout before the classifier, named as Flax names it automatically: the name seeds its
# random masks, so it must not change (checkpoints and results stay reproducible).
DROPOUT = architecture.DROPOUT


class ReIDNet(nn.Module):
    """Backbone + embedding + dropout + classifier.

    Attributes:
      backbone: a ResNet partial (e.g. `ResNet18` or `partial(ResNet50, num_filters=8)`),
        instantiated as the submodule 'backbone'.
      num_classes: classifier size C (training identities); 0 omits the classifier
        (pure triplet / distillation training) and 'logits' is then absent.
      embedding_size: D of the embedding layer, or None to use the size-C logits as the
        embedding (requires num_classes > 0).
      dropout_rate: dropout before the classifier (Hafner 2018 §4.3.2: 0.5); uses the
        'dropout' RNG stream when train=True.
      dtype: compute dtype of the head's Dense layers and BatchNorm output (bfloat16 /
        float16 for mixed precision); parameters and BatchNorm statistics are float32, and
        the embedding, logits and 'pooled' outputs are cast to float32 for losses and
        evaluation.
      activation: the non-linearity of the embedding layer and, when not `nn.relu`, also
        passed to the backbone (which must then have an `activation` field, as ResNet);
        e.g. `jaxreid.visualization.guided_relu` for guided backpropagation.
    """

    backbone: Callable[..., nn.Module]
    num_classes: int
    embedding_size: int | None = 128
    dropout_rate: float = 0.5
    dtype: Dtype = jnp.float32
    activation: Callable[[Array], Array] = nn.relu

    def layer_order(self) -> list[tuple[str, ...]]:
        """Paths of its layers in forward order: the backbone's ('backbone', ...), then
        'embedding', 'embedding_bn', the classifier's dropout and 'classifier'."""
        backbone = self.backbone(parent=None)
        return [("backbone", *p) for p in backbone.layer_order()] + [
            ("embedding",),
            ("embedding_bn",),
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
          labels: unused; accepted so that every re-id model (also DistanceNet, whose class
            centres need them) is called the same way by the trainer.
          train: dropout on and BatchNorm in batch-statistics mode (pass
            mutable=['batch_stats'] and rngs={'dropout': key}).
          modality: each image's modality ([N] int32 index in config.data.modalities, or
            one int for the batch), passed to the backbone; needed only by a partially
            shared two-stream backbone (`jaxreid.models.resnet.ResNet` streams > 1).

        Returns:
          embedding: [N, D] float32 (D = embedding_size, or num_classes when None).
          intermediates: backbone stages ('stem', 'layer1'..'layer4'), 'pooled' [N, F],
            'embedding' [N, D], and 'logits' [N, C] float32 when num_classes > 0.
        """
        if self.num_classes < 0:
            raise ValueError(f"ReIDNet.num_classes must be >= 0, got {self.num_classes}")
        if self.embedding_size is None and self.num_classes == 0:
            raise ValueError(
                "ReIDNet: embedding_size=None takes the classifier output as the embedding, "
                "so num_classes must be > 0; got num_classes=0"
            )
        if self.embedding_size is not None and self.embedding_size <= 0:
            raise ValueError(
                f"ReIDNet.embedding_size must be a positive int or None, got {self.embedding_size}"
            )

        # Passed only when changed, so backbones without an `activation` field still work.
        backbone_kwargs = {} if self.activation is nn.relu else {"activation": self.activation}
        call_kwargs = {} if modality is None else {"modality": modality}
        pooled, intermediates = self.backbone(name="backbone", **backbone_kwargs)(
            x, train, **call_kwargs
        )
        intermediates = dict(intermediates)
        pooled = pooled.astype(jnp.float32)  # A backbone in `dtype` may return it in bf16.
        intermediates["pooled"] = pooled

        dropout = nn.Dropout(rate=self.dropout_rate, deterministic=not train, name=DROPOUT)
        classifier = (
            nn.Dense(
                self.num_classes,
                dtype=self.dtype,
                param_dtype=jnp.float32,
                kernel_init=nn.initializers.normal(stddev=0.001),
                bias_init=nn.initializers.zeros,
                name="classifier",
            )
            if self.num_classes > 0
            else None
        )

        if self.embedding_size is None:
            logits = classifier(dropout(pooled)).astype(jnp.float32)
            embedding = logits
        else:
            hidden = nn.Dense(
                self.embedding_size,
                dtype=self.dtype,
                param_dtype=jnp.float32,
                kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                bias_init=nn.initializers.zeros,
                name="embedding",
            )(pooled)
            hidden = BatchNorm(dtype=self.dtype, name="embedding_bn")(hidden, train)
            embedding = self.activation(hidden).astype(jnp.float32)
            logits = (
                classifier(dropout(embedding)).astype(jnp.float32)
                if classifier is not None
                else None
            )

        intermediates["embedding"] = embedding
        if logits is not None:
            intermediates["logits"] = logits
        return embedding, intermediates
