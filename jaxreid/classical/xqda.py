r"""XQDA: Cross-view Quadratic Discriminant Analysis (Liao, Hu, Zhu & Li, CVPR 2015, §4).

    model = fit_xqda(x, x_ids, z, z_ids)     # view 1 (e.g. RGB) and view 2 (e.g. depth)
    distance = model.distance(q, g)          # [Q, G] learned metric
    q_emb, g_emb = model.embed(q), model.embed(g)   # Euclidean distance = that metric

XQDA learns a subspace W (d x r) and a metric M (r x r) from pairs across the two views:
the intra-personal differences x_i - z_j (same identity) and the extra-personal ones
(different identities) are modelled as zero-mean Gaussians with covariances Σ_I and Σ_E
(Eqs. 9-10, computed in closed form from class sums, §4.3); W maximises the generalised
Rayleigh quotient w^T Σ_E w / w^T Σ_I w (Eq. 14); the metric is
M = (W^T Σ_I W)^-1 - (W^T Σ_E W)^-1 (Eq. 12) and d(x, z) = (x - z)^T W M W^T (x - z) (Eq. 13).

Two solvers for W (`fit_xqda(..., solver=...)`, config key `classical.xqda_solver`):
  'svd'  as the published code, XQDA.m of Liao's LOMO_XQDA release (v1.0, 2015-04-30, the
         lines after "Compute eigen vectors"): `[V, S] = svd(inCov \ exCov)`, i.e. the
         *left singular vectors* of (Σ_I + λI)^-1 Σ_E (orthonormal), ordered by singular
         value, keeping those whose singular value exceeds 1. The default: this code
         produced the published LOMO/WHOS + XQDA rows (Hafner 2018 Tables 17/18 use it).
  'eig'  the paper's Eq. 14: the leading generalised eigenvectors of (Σ_E, Σ_I + λI) from a
         symmetric solver (scipy.linalg.eigh), keeping those with eigenvalue > 1 (§4.2: the
         extra-personal variance exceeds the intra-personal one).
The two agree only when Σ_I is a multiple of the identity; the singular values of the
non-symmetric (Σ_I + λI)^-1 Σ_E are not its eigenvalues, so even the subspace size differs.

NumPy/SciPy in float64: a one-off fit on the training features (no gradient, one
decomposition).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from jaxreid.config import choices

# Liao 2015 §4.3 / the published XQDA.m (`lambda = 0.001;`): Σ_I + λI (regularisation).
XQDA_LAMBDA = 0.001
# How W is found: 'svd' as XQDA.m does, 'eig' as Liao 2015 Eq. 14 states (module docstring).
SOLVERS = choices.XQDA_SOLVERS


@dataclasses.dataclass(frozen=True)
class XQDA:
    """A learned XQDA subspace and metric.

    Attributes:
      projection: [D, r] float64 W (input features -> subspace); the QR basis of the training
        features is folded in when D exceeded the number of training images.
      metric: [r, r] float64 M (symmetric).
      latent: [r] the kept directions' latent values, descending (XQDA.m's `latent`): the
        singular values of (Σ_I + λI)^-1 Σ_E for solver 'svd', the generalised eigenvalues of
        (Σ_E, Σ_I + λI) for 'eig'.
      num_above_one: how many latent values (of all directions) exceed 1.
      solver: 'svd' or 'eig' (`SOLVERS`).
    """

    projection: np.ndarray
    metric: np.ndarray
    latent: np.ndarray
    num_above_one: int
    solver: str

    def distance(self, query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """[Q, D], [G, D] -> [Q, G] float64 (x - z)^T W M W^T (x - z) (Liao 2015 Eq. 13)."""
        q = np.asarray(query, np.float64) @ self.projection
        g = np.asarray(gallery, np.float64) @ self.projection
        qm, gm = q @ self.metric, g @ self.metric
        return np.sum(qm * q, axis=1)[:, None] + np.sum(gm * g, axis=1)[None, :] - 2.0 * qm @ g.T

    def embed(self, features: np.ndarray) -> np.ndarray:
        """[N, D] -> [N, r] float32 features whose squared Euclidean distance is `distance`.

        x -> L^T W^T x with M = L L^T, from M's eigendecomposition. Choice: a negative
        eigenvalue of M is clipped to 0, so that the ranking can use the protocols' Euclidean
        distance. With solver 'eig' M is PSD whenever the kept eigenvalues exceed 1; with
        'svd' (orthonormal W, not Σ_I-conjugate) it need not be: `negative_metric_mass`
        says how much is clipped.
        """
        values, vectors = np.linalg.eigh((self.metric + self.metric.T) / 2)
        factor = vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]
        return (np.asarray(features, np.float64) @ self.projection @ factor).astype(np.float32)

    def negative_metric_mass(self) -> float:
        """Σ |negative eigenvalues of M| / Σ |eigenvalues of M|: the share of the metric that
        `embed` clips (0 when M is PSD, as the paper's analysis assumes)."""
        values = np.linalg.eigvalsh((self.metric + self.metric.T) / 2)
        total = np.sum(np.abs(values))
        return float(np.sum(-values[values < 0]) / total) if total > 0 else 0.0


def pair_covariances(
    x: np.ndarray, x_ids: np.ndarray, z: np.ndarray, z_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Intra- and extra-personal covariances of all cross-view pairs (Liao 2015 §4.3).

    Args:
      x: [n, d] view-1 features; x_ids: [n] identities.
      z: [m, d] view-2 features; z_ids: [m] identities.

    Returns:
      (Σ_I, Σ_E, n_I, n_E): [d, d] float64 means of (x_i - z_j)(x_i - z_j)^T over the n_I
      pairs with x_ids[i] == z_ids[j] and over the n_E pairs with different ids, computed
      from per-class sums in O((n + m) d²) instead of enumerating n * m pairs.

    Raises:
      ValueError: if no pair has the same (or no pair a different) identity.
    """
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    x_ids, z_ids = np.asarray(x_ids), np.asarray(z_ids)
    labels = np.union1d(x_ids, z_ids)
    xi = np.searchsorted(labels, x_ids)
    zi = np.searchsorted(labels, z_ids)
    n_x = np.bincount(xi, minlength=len(labels)).astype(np.float64)  # images per class, view 1
    n_z = np.bincount(zi, minlength=len(labels)).astype(np.float64)
    sum_x = np.zeros((len(labels), x.shape[1]))
    sum_z = np.zeros((len(labels), z.shape[1]))
    np.add.at(sum_x, xi, x)
    np.add.at(sum_z, zi, z)
    n_intra = int(np.sum(n_x * n_z))
    n_extra = len(x) * len(z) - n_intra
    if n_intra == 0 or n_extra == 0:
        raise ValueError(
            f"XQDA needs cross-view pairs of the same and of different identities; the "
            f"training features give {n_intra} same-identity and {n_extra} other pairs."
        )
    # Σ_{same-id pairs} x x^T = Σ_i n_z[id_i] x_i x_i^T; likewise for z; cross terms from sums.
    xw = x * np.sqrt(n_z[xi])[:, None]
    zw = z * np.sqrt(n_x[zi])[:, None]
    cross = sum_x.T @ sum_z
    intra = xw.T @ xw + zw.T @ zw - cross - cross.T
    tx, tz = x.sum(axis=0), z.sum(axis=0)
    all_pairs = len(z) * (x.T @ x) + len(x) * (z.T @ z) - np.outer(tx, tz) - np.outer(tz, tx)
    extra = all_pairs - intra
    return intra / n_intra, extra / n_extra, n_intra, n_extra


def span_basis(features: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis of the rows' span and the rows' coordinates in it.

    Args:
      features: [n, D] float64 with n < D.
      rtol: directions whose squared singular value is below rtol x the largest are dropped
        (the rows' span has lower rank).

    Returns:
      (basis [D, k], coords [n, k]) with features = coords @ basis.T up to rounding, from
      the eigendecomposition of the Gram matrix features @ features.T (one n x n x D matrix
      product: several times faster than a Householder QR of the D x n matrix on CPU).
    """
    gram = features @ features.T
    values, vectors = np.linalg.eigh(gram)
    keep = values > rtol * max(values.max(), 0.0)
    values, vectors = values[keep], vectors[:, keep]
    scale = np.sqrt(values)
    return features.T @ (vectors / scale[None, :]), vectors * scale[None, :]


def subspace(intra: np.ndarray, extra: np.ndarray, solver: str) -> tuple[np.ndarray, np.ndarray]:
    """All candidate directions of W and their latent values, latent values descending.

    Args:
      intra: [d, d] float64 Σ_I + λI (regularised, positive definite).
      extra: [d, d] float64 Σ_E.
      solver: 'svd' (XQDA.m: left singular vectors of intra^-1 extra, by singular value) or
        'eig' (Liao 2015 Eq. 14: generalised eigenvectors of (extra, intra), by eigenvalue).

    Returns:
      (vectors [d, d], latent [d]).

    Raises:
      ValueError: for any other solver.
    """
    if solver == "svd":
        # XQDA.m: `[V, S] = svd(inCov \ exCov)`; MATLAB's two-output svd returns U and S,
        # singular values already descending.
        vectors, latent, _ = np.linalg.svd(np.linalg.solve(intra, extra))
        return vectors, latent
    if solver == "eig":
        values, vectors = scipy.linalg.eigh(extra, intra)
        order = np.argsort(values)[::-1]
        return vectors[:, order], values[order]
    raise ValueError(f"XQDA solver={solver!r}; expected one of {SOLVERS}.")


def fit_xqda(
    x: np.ndarray,
    x_ids: np.ndarray,
    z: np.ndarray,
    z_ids: np.ndarray,
    *,
    lam: float = XQDA_LAMBDA,
    dims: int = -1,
    solver: str = "svd",
) -> XQDA:
    """Learns XQDA from view-1 features `x` and view-2 features `z` (Liao 2015 §4).

    Args:
      x: [n, D] float view-1 training features; x_ids: [n] identities. (XQDA.m's galX.)
      z: [m, D] float view-2 training features; z_ids: [m] identities. (XQDA.m's probX.) For
        a single view pass the same features twice (every pair of its images is a pair).
      lam: λ added to the diagonal of Σ_I (XQDA.m: 0.001).
      dims: subspace size r; <= 0: all directions with latent value > 1 (at least 1), and
        never more than those (XQDA.m's rule for qdaDims).
      solver: 'svd' (XQDA.m, default) or 'eig' (Eq. 14); see the module docstring.

    Returns:
      The learned `XQDA`.

    Raises:
      ValueError: for an unknown `solver` (before any work), or when the identities give no
        same-identity or no different-identity pair (`pair_covariances`).

    When D > n + m, the features are first expressed in an orthonormal basis of their span
    (`span_basis`; XQDA.m uses a thin QR), which leaves all pair differences and hence the
    learned metric unchanged (both solvers are equivariant under an orthogonal change of
    basis, since λI is).
    """
    if solver not in SOLVERS:
        raise ValueError(f"XQDA solver={solver!r}; expected one of {SOLVERS}.")
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    basis = None
    if x.shape[1] > len(x) + len(z):
        basis, coords = span_basis(np.concatenate([x, z]))
        x, z = coords[: len(x)], coords[len(x) :]
    intra, extra, _, _ = pair_covariances(x, x_ids, z, z_ids)
    intra = intra + lam * np.eye(len(intra))
    vectors, latent = subspace(intra, extra, solver)
    above = int(np.sum(latent > 1))
    r = max(1, min(dims, above) if dims > 0 else above)
    w = vectors[:, :r]
    metric = np.linalg.inv(w.T @ intra @ w) - np.linalg.inv(w.T @ extra @ w)
    projection = w if basis is None else basis @ w
    return XQDA(
        projection=projection,
        metric=(metric + metric.T) / 2,
        latent=latent[:r],
        num_above_one=above,
        solver=solver,
    )
