"""Training losses: softmax cross-entropy (with label smoothing), batch-hard triplet (with
cross-modal mining), weighted regularised triplet, MSE distillation, and `compose`, the loss
named by config.loss.

Pure functions of arrays; all return float32 scalars. Weight decay, class counts and
loss weights belong to the trainer/config, not here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxreid.config import choices

Array = jax.Array


def softmax_cross_entropy(logits: Array, labels: Array, label_smoothing: float = 0.0) -> Array:
    """Mean softmax cross-entropy (Hafner 2018, Eqs. 2-3), optionally label-smoothed.

    Args:
      logits: [N, C] float.
      labels: [N] int class indices in [0, C).
      label_smoothing: eps in [0, 1): the target is (1 - eps) one_hot + eps / C (Szegedy et
        al. 2016, "Rethinking the Inception Architecture", §7; torch's `label_smoothing`).

    Returns:
      float32 scalar, -1/N sum_i sum_c target_ic log softmax(logits_i)_c; with eps = 0,
      -1/N sum_i log softmax(logits_i)[labels_i].
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"softmax_cross_entropy: expected logits [N, C] and labels [N], got "
            f"{logits.shape} and {labels.shape}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"config.loss.label_smoothing={label_smoothing}; expected 0 <= eps < 1.")
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_probs, labels.astype(jnp.int32)[:, None], axis=1)
    if not label_smoothing:
        return -jnp.mean(picked)
    uniform = jnp.mean(log_probs, axis=-1)
    return -jnp.mean((1.0 - label_smoothing) * picked[:, 0] + label_smoothing * uniform)


def _safe_norm(x: Array) -> Array:
    """Euclidean norm over the last axis with a finite (zero) gradient at x = 0.

    d||x||/dx = x / ||x|| is bounded for x != 0; only x = 0 exactly needs the guard.
    """
    squared = jnp.sum(jnp.square(x), axis=-1)
    nonzero = squared > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, squared, 1.0)), 0.0)


# config.loss.mining
MINING = choices.MINING


def _triplet_inputs(
    loss: str, embeddings: Array, labels: Array, modalities: Array | None, mining: str
) -> tuple[Array, Array, Array]:
    """(float32 [N, D] embeddings, [N, N] positive and negative masks) of a triplet loss,
    after checking the shapes; errors name the `loss`."""
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"{loss}: expected embeddings [N, D] and labels [N], got "
            f"{embeddings.shape} and {labels.shape}"
        )
    positive, negative = _pair_masks(labels, modalities, mining)
    return embeddings.astype(jnp.float32), positive, negative


def _pair_masks(labels: Array, modalities: Array | None, mining: str) -> tuple[Array, Array]:
    """[N, N] bool positive and negative pair masks (never i == j) for `mining`."""
    if mining not in MINING:
        raise ValueError(f"config.loss.mining={mining!r}; expected one of {MINING}.")
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(n, dtype=bool)
    negative = ~same
    if mining == "cross_modal":
        if modalities is None or modalities.shape != labels.shape:
            raise ValueError(
                "config.loss.mining='cross_modal' needs the modality of every sample ([N] "
                f"ints, like labels {labels.shape}); got "
                f"{None if modalities is None else modalities.shape}."
            )
        other = modalities[:, None] != modalities[None, :]
        positive, negative = positive & other, negative & other
    return positive, negative


def batch_hard_triplet(
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 0.5,
    soft_margin: bool = False,
    modalities: Array | None = None,
    mining: str = "batch",
) -> Array:
    """Batch-hard triplet loss (Hermans et al. 2017, "In Defense of the Triplet Loss").

    For each anchor i: hardest positive = the same-label sample j != i farthest from i,
    hardest negative = the other-label sample closest to i (Euclidean distance). The
    per-anchor loss is [d_ap - d_an + margin]_+ (hinge), or softplus(d_ap - d_an) when
    soft_margin=True (margin is then ignored). Hafner 2018 §4.3.2 uses margin 0.5.

    The loss is the mean over anchors that have at least one positive and one negative;
    it is 0 when no anchor qualifies (e.g. every label appears once).

    The hardest pairs are chosen on a stop-gradient distance matrix; their distances are
    then recomputed from the embedding differences. That is the gradient of the max/min
    formulation (the gradient of a max flows to its arg-max), avoids the cancellation of
    the |a|^2 + |b|^2 - 2ab expansion, and is finite when embeddings coincide.

    Cross-modal mining (`mining='cross_modal'`): positives and negatives are taken only from
    the samples of another modality than the anchor's, so every triplet compares across
    modalities (as the cross-modality triplet losses of visible-infrared re-id; e.g. Ye et
    al. 2018's bi-directional ranking loss). Anchors without such a positive and negative
    do not count.

    Args:
      embeddings: [N, D] float.
      labels: [N] int identities.
      margin: hinge margin alpha.
      soft_margin: use softplus instead of the hinge.
      modalities: [N] int modality of each sample (needed by 'cross_modal').
      mining: one of MINING: 'batch' (every other sample) or 'cross_modal'.

    Returns:
      float32 scalar.
    """
    x, positive, negative = _triplet_inputs(
        "batch_hard_triplet", embeddings, labels, modalities, mining
    )

    # Selection only: full-precision Gram matrix (TPU default matmul precision is bf16).
    xs = jax.lax.stop_gradient(x)
    sq_norms = jnp.sum(jnp.square(xs), axis=1)
    gram = jnp.matmul(xs, xs.T, precision=jax.lax.Precision.HIGHEST)
    sq_dist = jnp.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * gram, 0.0)
    hardest_positive = jnp.argmax(jnp.where(positive, sq_dist, -jnp.inf), axis=1)
    hardest_negative = jnp.argmin(jnp.where(negative, sq_dist, jnp.inf), axis=1)

    d_ap = _safe_norm(x - x[hardest_positive])
    d_an = _safe_norm(x - x[hardest_negative])
    if soft_margin:
        per_anchor = jax.nn.softplus(d_ap - d_an)
    else:
        per_anchor = jax.nn.relu(d_ap - d_an + margin)

    valid = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
    count = jnp.sum(valid)
    return jnp.sum(jnp.where(valid, per_anchor, 0.0)) / jnp.maximum(count, 1)


def weighted_regularized_triplet(
    embeddings: Array,
    labels: Array,
    *,
    modalities: Array | None = None,
    mining: str = "batch",
) -> Array:
    """Weighted regularised triplet loss (WRT; Ye et al. 2021, "Deep Learning for Person
    Re-identification: A Survey and Outlook", TPAMI, §4.1, Eq. 5).

    For anchor i with positive set P_i and negative set N_i (Euclidean distances d_ij):

        w_ij = exp(d_ij) / sum_{k in P_i} exp(d_ik)    (j in P_i: far positives weigh more)
        w_ij = exp(-d_ij) / sum_{k in N_i} exp(-d_ik)  (j in N_i: close negatives weigh more)
        loss_i = softplus(sum_{j in P_i} w_ij d_ij - sum_{j in N_i} w_ij d_ij)

    and the loss is the mean of loss_i over anchors with at least one positive and one
    negative (0 if none). No margin. The weights are not stop-gradient-ed (as in the AGW
    code's `TripletLoss_WRT`, github.com/mangye16/Cross-Modal-Re-ID-baseline loss.py, read,
    not copied).

    Differences from that code: P_i excludes the anchor itself (the code's mask includes
    j = i at distance ~1e-6, which pulls the weighted positive distance slightly down), and
    the softmax is computed exactly (the code adds 1e-6 to its normaliser).

    Args:
      embeddings: [N, D] float.
      labels: [N] int identities.
      modalities, mining: as `batch_hard_triplet` ('cross_modal': P_i and N_i only from
        the other modality).

    Returns:
      float32 scalar.
    """
    x, positive, negative = _triplet_inputs(
        "weighted_regularized_triplet", embeddings, labels, modalities, mining
    )
    # Differences, not the |a|^2 + |b|^2 - 2ab expansion: exact, and finite gradients for
    # coinciding embeddings ([N, N, D] is small for training batches).
    dist = _safe_norm(x[:, None, :] - x[None, :, :])

    def weighted(logits, mask):
        """sum_j softmax_j(logits over mask) * dist_ij; 0 for rows without a masked entry."""
        # Shift by the row's largest masked logit (the softmax does not change).
        top = jnp.max(jnp.where(mask, logits, -jnp.inf), axis=1, keepdims=True)
        top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
        e = jnp.where(mask, jnp.exp(jnp.where(mask, logits - top, 0.0)), 0.0)
        w = e / jnp.maximum(jnp.sum(e, axis=1, keepdims=True), 1e-30)
        return jnp.sum(w * dist, axis=1)

    d_ap = weighted(dist, positive)
    d_an = weighted(-dist, negative)
    per_anchor = jax.nn.softplus(d_ap - d_an)
    valid = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
    return jnp.sum(jnp.where(valid, per_anchor, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


MSE_REDUCTIONS = choices.MSE_REDUCTIONS  # config.distill.loss_reduction


def mse_distillation(student: Array, teacher: Array, *, reduction: str = "sum") -> Array:
    """Squared-error distillation loss between paired embeddings (Hafner 2018, Eq. 6).

    reduction:
      'sum' (default): sum over all N*D elements. This is what the thesis author's code
        trains with: `nn.MSELoss(size_average=False)` in transfer-reid/retrainer.py of
        github.com/frhf/cross-modal-distillation-reidentification (with SGD lr 2e-6 there).
      'per_sample': sum over D, mean over N, i.e. 1/N sum_i ||F(x_i) - G(x_i)||^2, the
        formula written in Hafner 2018 Eq. 6 (§3.3).
      'mean': mean over all N*D elements (torch MSELoss's default reduction).
    The three differ only by the constant factors N*D and D (i.e. in the effective
    learning rate).

    The teacher is the frozen target: it is wrapped in stop_gradient.

    Args:
      student: [N, D] float, embeddings of the trainable network G.
      teacher: [N, D] float, embeddings of the frozen network F for the paired images.

    Returns:
      float32 scalar.
    """
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(
            f"mse_distillation: expected student and teacher of equal shape [N, D], got "
            f"{student.shape} and {teacher.shape}"
        )
    diff = student.astype(jnp.float32) - jax.lax.stop_gradient(teacher.astype(jnp.float32))
    squared = jnp.square(diff)
    if reduction == "sum":
        return jnp.sum(squared)
    if reduction == "per_sample":
        return jnp.mean(jnp.sum(squared, axis=1))
    if reduction == "mean":
        return jnp.mean(squared)
    raise ValueError(
        f"mse_distillation: unknown reduction {reduction!r}; expected one of {MSE_REDUCTIONS}"
    )


# config.loss.name is these parts joined by '+', e.g. 'softmax+wrt'.
LOSS_PARTS = choices.LOSS_PARTS
# Every name `compose` accepts (for config validation).
LOSS_NAMES = choices.LOSS_NAMES


def loss_parts(name: str) -> list[str]:
    """'softmax+wrt' -> ['softmax', 'wrt'].

    Raises:
      ValueError: an unknown or repeated part, or both 'triplet' and 'wrt'.
    """
    parts = name.split("+")
    bad = [p for p in parts if p not in LOSS_PARTS]
    if bad or len(set(parts)) != len(parts) or {"triplet", "wrt"} <= set(parts):
        raise ValueError(
            f"config.loss.name={name!r}; expected parts of {LOSS_PARTS} joined by '+', each "
            "at most once and not both 'triplet' and 'wrt' (e.g. 'softmax+wrt')."
        )
    return parts


def compose(
    loss_config,
    embedding: Array,
    intermediates: dict[str, Array],
    labels: Array,
    modalities: Array | None = None,
) -> tuple[Array, dict[str, Array]]:
    """The training loss named by config.loss and the metrics to log (the sum of its parts).

    Reads loss_config.name (parts of LOSS_PARTS), triplet_margin and soft_margin
    ('triplet'), triplet_feature ('triplet' and 'wrt'), mining, label_smoothing ('softmax'),
    metric_weight w (default 1): the loss is softmax + w * (triplet or wrt).
    For 'softmax', 'triplet', 'softmax+triplet' with mining 'batch' and no label smoothing
    it computes the losses jaxreid trained with before it existed.

    Args:
      loss_config: the config.loss group (or any object with those attributes).
      embedding: [B, D] float32, the network's embedding.
      intermediates: the model's named outputs; 'logits' [B, C] for 'softmax', and the
        features named by loss_config.triplet_feature if set (e.g. 'pooled' for BNNeck).
      labels: [B] int32 class labels.
      modalities: [B] int32 modality of each sample (the batch's 'modality'); needed by
        mining 'cross_modal'.

    Returns:
      (loss float32 scalar, metrics: 'loss' (the weighted total), and 'softmax_loss' +
      'accuracy' / 'triplet_loss' / 'wrt_loss' (unweighted) for the parts present).
    """
    from jaxreid.models import select_feature  # Here: losses stay importable without flax.

    parts = loss_parts(loss_config.name)
    metrics, total = {}, jnp.zeros((), jnp.float32)
    mining = getattr(loss_config, "mining", "batch")
    if "softmax" in parts:
        logits = intermediates["logits"].astype(jnp.float32)
        ce = softmax_cross_entropy(
            logits, labels, label_smoothing=getattr(loss_config, "label_smoothing", 0.0)
        )
        metrics["softmax_loss"] = ce
        metrics["accuracy"] = jnp.mean(jnp.argmax(logits, -1) == labels)
        total += ce
    if "triplet" in parts or "wrt" in parts:
        features = select_feature(
            embedding, intermediates, loss_config.triplet_feature, "config.loss.triplet_feature"
        ).astype(jnp.float32)
        if "triplet" in parts:
            metric_loss = batch_hard_triplet(
                features,
                labels,
                margin=loss_config.triplet_margin,
                soft_margin=loss_config.soft_margin,
                modalities=modalities,
                mining=mining,
            )
            metrics["triplet_loss"] = metric_loss
        else:
            metric_loss = weighted_regularized_triplet(
                features, labels, modalities=modalities, mining=mining
            )
            metrics["wrt_loss"] = metric_loss
        total += getattr(loss_config, "metric_weight", 1.0) * metric_loss
    metrics["loss"] = total
    return total, metrics
