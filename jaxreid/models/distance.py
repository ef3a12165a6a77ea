"""Distance-based score layer of Tekeli & Can 2019 ("Distance based Training for
Cross-Modality Person Re-Identification", ICCV-W 2019).

The layer replaces the last fully-connected classifier: for every class i it holds a center
c_i and outputs score_i = -d(x, c_i) (Tekeli 2019, §3.2, Fig. 1), so a standard softmax
cross-entropy over the scores trains the network with a distance metric (§3.3.1).

Metrics (Tekeli 2019, Eqs. 4-8), `metric=`:
  'l1'    d = sum_j |x_j - c_j|                       (Eq. 4)
  'l2'    d = sqrt(sum_j (x_j - c_j)^2)                (Eq. 5)
  'sql2'  d = sum_j (x_j - c_j)^2                      (Eq. 6)
  'linf'  d = max_j |x_j - c_j|                        (Eq. 7)
  'dot'   d = -x . c, so score = x . c                 (Eq. 8; a bias-free dense layer)

Center updates, `center_update=`:
  'sgd'       centers are the parameter `params/centers` and are trained by the optimiser.
  'ema'       exponential running average, c <- beta c + (1 - beta) x for each sample of the
              class (Eq. 9), beta = `momentum` (0.7: Tekeli 2019, Table 1 / §4.4).
  'median'    c <- elementwise median of the class's feature vectors in the batch (§3.2).
  'midrange'  c <- elementwise (max + min) / 2 of the class's feature vectors in the batch (§3.2).
For 'ema' / 'median' / 'midrange' the centers are the variable `centers/centers` in the mutable
collection CENTERS_COLLECTION ('centers'); they receive no gradient.

Conventions fixed here (the paper leaves them open):
- Scores are computed with the centers as they are *before* this batch's update ("the center
  points of classes need to be updated after scores are calculated", §3.2).
- Updates use the *global* batch. Under `jax.jit` with the batch sharded over a mesh axis, the
  jnp ops below see the full [N, D] array, so a class seen on any device updates the same
  center and the result does not depend on the device count.
- Several samples of one class in one batch ('ema'): Eq. 9 is applied once per sample, in batch
  order (index 0 first). For a class whose k valid samples are x_1..x_k in that order this is
  exactly the closed form
        c <- beta^k c + (1 - beta) sum_{j=1..k} beta^(k-j) x_j,
  which is what `ema_update` computes (one-hot matmul, no loop over samples).
- 'median' with an even number k of samples takes the mean of the two middle values (the usual
  convention, as `numpy.median`); with k = 1 the center becomes the sample itself.
- Classes with no valid sample in the batch keep their center. Samples with `mask == False` or
  with a label outside [0, num_classes) are not used by any update.
- Initialisation: the paper only says centers are initialised "with random values" (§4.2) and
  gives no distribution. We default to LeCun-normal with fan-in D (stddev 1/sqrt(D)), the same
  distribution `nn.Dense` uses for its kernel, so 'dot' + 'sgd' starts from the same
  distribution as the fully-connected baseline it is compared with in Table 2. Non-'sgd'
  centers are drawn with the 'params' rng at init; 'ema' forgets them geometrically (beta^k),
  'median' / 'midrange' replace them the first time their class appears.

Cost for N features of size D and C classes (forward):
  'dot', 'l2', 'sql2': one [N, D] x [D, C] matmul, O(NCD) flops, O(NC) extra memory
                       (L2 via ||x||^2 - 2 x.c + ||c||^2).
  'l1', 'linf':        broadcast |x - c| as [N, C, D]: O(NCD) flops *and* memory
                       (N=32, C=296, D=2048 float32: 78 MB; fine for training batches; do not use
                       this layer to rank a whole gallery -- evaluation has its own distances).
  updates: 'ema' O(NC + NCD) (one-hot matmul), 'median' O(D N log N) (a sort), 'midrange' O(ND).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from jaxreid.config import choices

METRICS = choices.DISTANCE_METRICS  # config.model.distance.metric
CENTER_UPDATES = choices.CENTER_UPDATES  # config.model.distance.center_update
CENTERS_COLLECTION = "centers"

# Tekeli 2019, Table 1 and §4.4: beta = 0.70 is used for all other experiments.
DEFAULT_MOMENTUM = 0.7

# Random init (Tekeli 2019, §4.2 gives no distribution): LeCun normal over fan-in D of [C, D],
# the distribution of an nn.Dense kernel [D, C].
default_center_init = nn.initializers.lecun_normal(in_axis=-1, out_axis=-2)


def _check_name(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise ValueError(f"DistanceScores: unknown {what} {value!r}; expected one of {valid}.")


@jax.custom_jvp
def _safe_sqrt(squared: jax.Array, floor: jax.Array) -> jax.Array:
    """sqrt(max(squared, 0)) with a gradient that is finite everywhere.

    `floor` (>= 0, broadcastable to `squared`) is the rounding-error scale of `squared`. Where
    squared <= floor the computed value is indistinguishable from 0 (x is at the center within
    rounding), and the derivative is 0 there -- the subgradient of ||x - c|| at x = c -- instead
    of 1 / (2 sqrt(squared)), which is inf or amplified rounding noise. Above the floor it is
    the exact derivative. The value itself is not changed (an exact 0 stays 0).
    """
    return jnp.sqrt(jnp.maximum(squared, 0.0))


@_safe_sqrt.defjvp
def _safe_sqrt_jvp(primals, tangents):
    squared, floor = primals
    d_squared, _ = tangents  # no derivative through the floor
    above = squared > floor
    denominator = 2.0 * jnp.sqrt(jnp.where(above, squared, 1.0))
    return _safe_sqrt(squared, floor), jnp.where(above, d_squared / denominator, 0.0)


def distances_to_centers(
    features: jax.Array, centers: jax.Array, metric: str, precision: Any = None
) -> jax.Array:
    """Distance of every feature vector to every class center (Tekeli 2019, Eqs. 4-8).

    Args:
      features: [N, D] float.
      centers: [C, D] float.
      metric: one of METRICS. For 'dot' the "distance" is -x.c (Eq. 8).
      precision: matmul precision for 'dot' (as nn.Dense). 'l2' / 'sql2' always use HIGHEST,
        because the expansion ||x||^2 - 2 x.c + ||c||^2 cancels catastrophically otherwise.

    Returns:
      [N, C] float, d(x_n, c_i).
    """
    _check_name(metric, METRICS, "metric")
    if metric == "dot":
        return -jnp.matmul(features, centers.T, precision=precision)
    if metric in ("l2", "sql2"):
        xx = jnp.sum(features * features, axis=-1)[:, None]  # [N, 1]
        cc = jnp.sum(centers * centers, axis=-1)[None, :]  # [1, C]
        xc = jnp.matmul(features, centers.T, precision=jax.lax.Precision.HIGHEST)  # [N, C]
        squared = xx - 2.0 * xc + cc
        if metric == "sql2":
            return jnp.maximum(squared, 0.0)
        # The expansion's rounding error is about eps * (||x||^2 + ||c||^2); below that the
        # squared distance is noise, so the sqrt's derivative is taken as 0 there (finite at
        # x = c; above the floor |d dist / dx| stays <= ~sqrt(2), true ||x-c||^2 <= s + error).
        eps = jnp.finfo(squared.dtype).eps
        return _safe_sqrt(squared, eps * (xx + cc))
    # 'l1' / 'linf': [N, C, D] broadcast (see the module docstring for the memory cost).
    diff = jnp.abs(features[:, None, :] - centers[None, :, :])
    if metric == "l1":
        return jnp.sum(diff, axis=-1)
    return jnp.max(diff, axis=-1)


def _valid_one_hot(labels: jax.Array, valid: jax.Array, num_classes: int) -> jax.Array:
    """[N, C] int32 one-hot of `labels`, with all-zero rows for invalid samples."""
    one_hot = labels[:, None] == jnp.arange(num_classes, dtype=labels.dtype)[None, :]
    return (one_hot & valid[:, None]).astype(jnp.int32)


def ema_update(
    centers: jax.Array,
    features: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    momentum: float,
) -> jax.Array:
    """Eq. 9 applied once per valid sample, in batch order, in closed form.

    For class i with valid samples x_1..x_k (batch order), c_i <- beta^k c_i +
    (1 - beta) sum_j beta^(k-j) x_j; k = 0 leaves c_i unchanged.

    Args:
      centers: [C, D] float. features: [N, D] float (already stop_gradient-ed by the caller).
      labels: [N] int. valid: [N] bool. momentum: beta in [0, 1].

    Returns:
      [C, D] updated centers, same dtype as `centers`.
    """
    num_classes = centers.shape[0]
    one_hot = _valid_one_hot(labels, valid, num_classes)  # [N, C]
    counts = jnp.sum(one_hot, axis=0)  # [C], k per class
    # Number of earlier valid samples of the same class (0-based position within the class).
    earlier = jnp.cumsum(one_hot, axis=0) - one_hot  # [N, C]
    position = jnp.sum(earlier * one_hot, axis=1)  # [N]
    class_count = jnp.sum(one_hot * counts[None, :], axis=1)  # [N], k of the sample's class
    # Exponent k - j for 1-based j = position + 1; 0 for invalid rows (beta^-1 is inf at beta=0).
    exponent = jnp.where(valid, class_count - 1 - position, 0).astype(centers.dtype)
    beta = jnp.asarray(momentum, centers.dtype)
    weights = (1.0 - beta) * jnp.power(beta, exponent)  # [N]
    weighted_one_hot = one_hot.astype(centers.dtype) * weights[:, None]  # [N, C]
    new_part = jnp.matmul(
        weighted_one_hot.T, features.astype(centers.dtype), precision=jax.lax.Precision.HIGHEST
    )  # [C, D]
    decay = jnp.power(beta, counts.astype(centers.dtype))[:, None]  # [C, 1]; beta^0 = 1
    return decay * centers + new_part


def median_update(
    centers: jax.Array, features: jax.Array, labels: jax.Array, valid: jax.Array
) -> jax.Array:
    """Elementwise median of each class's valid feature vectors; absent classes unchanged.

    Sorts the batch once along N by (class, value) per dimension, then reads the middle one
    or two entries of each class's run. Even counts: mean of the two middle values.

    Args / returns as `ema_update` (without momentum).
    """
    num_classes = centers.shape[0]
    n, d = features.shape
    features = features.astype(centers.dtype)
    # Invalid samples get key C, so they sort after every real class and are never read.
    keys = jnp.where(valid, labels, num_classes).astype(jnp.int32)
    counts = jnp.sum(_valid_one_hot(labels, valid, num_classes), axis=0)  # [C]
    starts = jnp.cumsum(counts) - counts  # [C] first row of each class's run
    _, sorted_features = jax.lax.sort(
        (jnp.broadcast_to(keys[:, None], (n, d)), features), dimension=0, num_keys=2
    )
    lower = jnp.clip(starts + (counts - 1) // 2, 0, n - 1)
    upper = jnp.clip(starts + counts // 2, 0, n - 1)
    median = 0.5 * (
        jnp.take(sorted_features, lower, axis=0) + jnp.take(sorted_features, upper, axis=0)
    )
    return jnp.where((counts > 0)[:, None], median, centers)


def midrange_update(
    centers: jax.Array, features: jax.Array, labels: jax.Array, valid: jax.Array
) -> jax.Array:
    """Elementwise (max + min) / 2 of each class's valid feature vectors; absent classes unchanged.

    Args / returns as `ema_update` (without momentum).
    """
    num_classes = centers.shape[0]
    features = features.astype(centers.dtype)
    # Segment C collects the invalid samples and is dropped.
    segments = jnp.where(valid, labels, num_classes).astype(jnp.int32)
    maxima = jax.ops.segment_max(features, segments, num_segments=num_classes + 1)[:num_classes]
    minima = jax.ops.segment_min(features, segments, num_segments=num_classes + 1)[:num_classes]
    present = (jnp.sum(_valid_one_hot(labels, valid, num_classes), axis=0) > 0)[:, None]
    # Empty segments are -inf / +inf; replace before adding so no nan is ever formed.
    midrange = 0.5 * (jnp.where(present, maxima, 0.0) + jnp.where(present, minima, 0.0))
    return jnp.where(present, midrange, centers)


class DistanceScores(nn.Module):
    """score_i = -d(x, c_i) for every class center c_i (Tekeli 2019, §3.2, Eqs. 4-9).

    Attributes:
      num_classes: C, number of training identities.
      metric: one of METRICS ('l1', 'l2', 'sql2', 'linf', 'dot').
      center_update: one of CENTER_UPDATES ('sgd', 'ema', 'median', 'midrange').
      momentum: beta of Eq. 9 ('ema' only); 0.7 per Tekeli 2019, Table 1.
      center_init: initializer(key, (C, D), dtype) -> [C, D]; random (§4.2), see module docstring.
      dtype: computation dtype of distances and updates (float32: the L2 expansion and the
        running averages need it even when the backbone runs in bfloat16).
      precision: matmul precision of the 'dot' metric (as nn.Dense).

    Variables:
      'sgd':  params/centers [C, D].
      others: centers/centers [C, D] in the collection CENTERS_COLLECTION, changed only when
              train=True, the collection is mutable and the module is not initialising.
    """

    num_classes: int
    metric: str = "l2"
    center_update: str = "ema"
    momentum: float = DEFAULT_MOMENTUM
    center_init: Callable[..., jax.Array] = default_center_init
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(
        self,
        features: jax.Array,
        labels: jax.Array | None = None,
        *,
        train: bool,
        mask: jax.Array | None = None,
    ) -> jax.Array:
        """Scores of every sample for every class.

        Args:
          features: [N, D] float, e.g. the pooled backbone output (Tekeli 2019, §3.3).
          labels: [N] int class index in [0, C); needed when train=True with a non-'sgd'
            update and a mutable 'centers' collection; ignored otherwise.
          train: update non-gradient centers (if the collection is mutable).
          mask: [N] bool, False for padding examples, which are left out of center updates
            (their scores are still returned; mask them in the loss too).

        Returns:
          [N, C] float (`dtype`), -d(x_n, c_i): usable directly as softmax logits.
        """
        _check_name(self.metric, METRICS, "metric")
        _check_name(self.center_update, CENTER_UPDATES, "center_update")
        if features.ndim != 2:
            raise ValueError(
                f"DistanceScores: features must be [N, D], got shape {features.shape}."
            )
        n, d = features.shape
        features = features.astype(self.dtype)
        shape = (self.num_classes, d)

        if self.center_update == "sgd":
            centers = self.param("centers", self.center_init, shape, jnp.float32)
            centers = centers.astype(self.dtype)
            return -distances_to_centers(features, centers, self.metric, self.precision)

        centers_var = self.variable(
            CENTERS_COLLECTION,
            "centers",
            lambda: self.center_init(self.make_rng("params"), shape, jnp.float32),
        )
        centers = centers_var.value
        if centers.shape != shape:
            raise ValueError(
                f"DistanceScores: variable {CENTERS_COLLECTION}/centers has shape {centers.shape}, "
                f"expected {shape} (num_classes, feature size)."
            )
        # Scores from the pre-update centers (§3.2); the centers get no gradient either way.
        scores = -distances_to_centers(
            features, jax.lax.stop_gradient(centers).astype(self.dtype), self.metric, self.precision
        )

        if train and self.is_mutable_collection(CENTERS_COLLECTION) and not self.is_initializing():
            if labels is None:
                raise ValueError(
                    f"DistanceScores: center_update={self.center_update!r} with train=True and a "
                    f"mutable {CENTERS_COLLECTION!r} collection needs labels [N]; got None."
                )
            labels = jnp.asarray(labels)
            if labels.shape != (n,):
                raise ValueError(
                    f"DistanceScores: labels must have shape ({n},), got {labels.shape}."
                )
            labels = labels.astype(jnp.int32)
            valid = (labels >= 0) & (labels < self.num_classes)
            if mask is not None:
                mask = jnp.asarray(mask)
                if mask.shape != (n,):
                    raise ValueError(
                        f"DistanceScores: mask must have shape ({n},), got {mask.shape}."
                    )
                valid = valid & mask.astype(bool)
            # The update is a statistic of the features, not part of the loss's graph.
            frozen = jax.lax.stop_gradient(features)
            if self.center_update == "ema":
                new = ema_update(centers, frozen, labels, valid, self.momentum)
            elif self.center_update == "median":
                new = median_update(centers, frozen, labels, valid)
            else:
                new = midrange_update(centers, frozen, labels, valid)
            centers_var.value = new.astype(centers.dtype)
        return scores


class DistanceNet(nn.Module):
    """ReIDNet-compatible network with Tekeli's distance score layer as the classifier.

    `backbone` is any module factory (a class or functools.partial, as ReIDNet's `backbone`)
    whose instance maps (x, train=...) -> (output [N, D], intermediates dict), e.g.
    `partial(ResNet50)` (Tekeli: the 2048-d average-pool output is the feature, §3.3) or a
    `partial(ReIDNet, ...)`. The distance layer scores `intermediates[feature_key]`, or the
    backbone's output if feature_key is None.

    Returns (features [N, D] float32, intermediates): intermediates are the backbone's plus
    'features' (the layer input, used for ranking) and 'logits' [N, C] = -d(x, c_i), so the
    trainer's softmax cross-entropy over intermediates['logits'] trains it as in §3.3.1.
    Submodules: 'backbone' (as in ReIDNet, so pretrained weights and freezing
    find it by the same name) and 'distance_scores'.
    """

    backbone: Callable[..., nn.Module]
    num_classes: int
    metric: str = "l2"
    center_update: str = "ema"
    momentum: float = DEFAULT_MOMENTUM
    center_init: Callable[..., jax.Array] = default_center_init
    feature_key: str | None = None

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        labels: jax.Array | None = None,
        *,
        train: bool,
        mask: jax.Array | None = None,
        modality: jax.Array | int | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        # modality: each image's modality for a partially shared two-stream backbone
        # (jaxreid.models.resnet.ResNet streams > 1); not passed on when None.
        call_kwargs = {} if modality is None else {"modality": modality}
        output, intermediates = self.backbone(name="backbone")(x, train=train, **call_kwargs)
        if self.feature_key is None:
            features = output
        elif self.feature_key in intermediates:
            features = intermediates[self.feature_key]
        else:
            raise KeyError(
                f"DistanceNet: feature_key {self.feature_key!r} not among the backbone's "
                f"intermediates {sorted(intermediates)}."
            )
        scores = DistanceScores(
            num_classes=self.num_classes,
            metric=self.metric,
            center_update=self.center_update,
            momentum=self.momentum,
            center_init=self.center_init,
            name="distance_scores",
        )(features, labels, train=train, mask=mask)
        intermediates = dict(intermediates)
        # float32 for losses and evaluation, also when the backbone computes in bf16/fp16
        # (the scores are float32 already: DistanceScores.dtype).
        features = features.astype(jnp.float32)
        intermediates["features"] = features
        intermediates["logits"] = scores
        return features, intermediates
