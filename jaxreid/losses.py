"""Training losses: softmax cross-entropy, batch-hard triplet, MSE distillation.

Pure functions of arrays; all return float32 scalars. Weight decay, class counts and
loss weights belong to the trainer/config, not here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy (Hafner 2018, Eqs. 2-3).

    Args:
      logits: [N, C] float.
      labels: [N] int class indices in [0, C).

    Returns:
      float32 scalar, -1/N sum_i log softmax(logits_i)[labels_i].
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"softmax_cross_entropy: expected logits [N, C] and labels [N], got "
            f"{logits.shape} and {labels.shape}"
        )
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(log_probs, labels.astype(jnp.int32)[:, None], axis=1)
    return -jnp.mean(picked)


def _safe_norm(x: Array) -> Array:
    """Euclidean norm over the last axis with a finite (zero) gradient at x = 0.

    d||x||/dx = x / ||x|| is bounded for x != 0; only x = 0 exactly needs the guard.
    """
    squared = jnp.sum(jnp.square(x), axis=-1)
    nonzero = squared > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, squared, 1.0)), 0.0)


def batch_hard_triplet(
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 0.5,
    soft_margin: bool = False,
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

    Args:
      embeddings: [N, D] float.
      labels: [N] int identities.
      margin: hinge margin alpha.
      soft_margin: use softplus instead of the hinge.

    Returns:
      float32 scalar.
    """
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"batch_hard_triplet: expected embeddings [N, D] and labels [N], got "
            f"{embeddings.shape} and {labels.shape}"
        )
    x = embeddings.astype(jnp.float32)
    n = x.shape[0]
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(n, dtype=bool)
    negative = ~same

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


MSE_REDUCTIONS = ("sum", "per_sample", "mean")


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
