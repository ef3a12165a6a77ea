"""P x K identity sampling (Hermans et al. 2017), a pure function of (seed, step).

Every batch is drawn from its own generator seeded with (seed, step), so a resumed run sees
exactly the batches it would have seen without the interruption, on any number of hosts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreid.config import choices

# config.batch.sampler: 'pk' = `sample_batch` (P identities x K images, Hermans et al. 2017);
# 'random' = `sample_random_batch` (P*K images drawn uniformly; Tekeli 2019 §4.2).
SAMPLERS = choices.SAMPLERS


@dataclasses.dataclass(frozen=True)
class IdentityIndex:
    """Where each training identity's images are, per modality.

    Attributes:
      labels: [C] the person ids that take part, in the order of their class label.
      positions: positions[m][c] = [n_mc] int indices of label c's images in modality m.
    """

    labels: np.ndarray
    positions: tuple[tuple[np.ndarray, ...], ...]

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def index_identities(person_ids_per_modality: list[np.ndarray]) -> IdentityIndex:
    """Indexes the identities present in *every* modality.

    Cross-modal batches need each sampled identity in each modality; identities seen in only
    one are left out of training (and so out of the classifier).

    Args:
      person_ids_per_modality: one [N_m] int array per modality.
    """
    common = set(np.unique(person_ids_per_modality[0]).tolist())
    for ids in person_ids_per_modality[1:]:
        common &= set(np.unique(ids).tolist())
    labels = np.array(sorted(common), dtype=np.int64)
    if len(labels) < 2:
        raise ValueError(
            f"Only {len(labels)} identities are present in every modality; P x K sampling needs "
            "at least 2."
        )
    positions = tuple(
        tuple(np.flatnonzero(ids == pid) for pid in labels) for ids in person_ids_per_modality
    )
    return IdentityIndex(labels=labels, positions=positions)


def sample_batch(
    index: IdentityIndex, num_identities: int, images_per_identity: int, seed: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The global batch of one training step.

    P identities are drawn without replacement; each contributes K images split evenly over
    the M modalities (K / M each), drawn without replacement when the identity has enough
    images in that modality and with replacement otherwise.

    Returns:
      labels: [P*K] int32 class labels (0..C-1), identity-major: P blocks of K.
      modality: [P*K] int32 index into the modalities.
      positions: [P*K] int64 index of the image within its modality's ImageSet.
    """
    num_modalities = len(index.positions)
    per_modality = images_per_identity // num_modalities
    if num_identities > index.num_classes:
        raise ValueError(
            f"config.batch.num_identities={num_identities} exceeds the {index.num_classes} "
            "training identities."
        )
    rng = np.random.default_rng([seed, step])
    chosen = rng.choice(index.num_classes, size=num_identities, replace=False)
    labels, modality, positions = [], [], []
    for label in chosen:
        for m in range(num_modalities):
            pool = index.positions[m][label]
            take = rng.choice(pool, size=per_modality, replace=len(pool) < per_modality)
            labels.append(np.full(per_modality, label))
            modality.append(np.full(per_modality, m))
            positions.append(take)
    return (
        np.concatenate(labels).astype(np.int32),
        np.concatenate(modality).astype(np.int32),
        np.concatenate(positions).astype(np.int64),
    )


def sample_random_batch(
    index: IdentityIndex, batch_size: int, seed: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A global batch drawn uniformly, without replacement, from every training image of every
    modality (Tekeli 2019 §4.2: "batches drawn from either modality"). Same outputs as
    `sample_batch`, in draw order."""
    labels, modality, positions = _flat_index(index)
    if batch_size > len(labels):
        raise ValueError(f"Batch of {batch_size} exceeds the {len(labels)} training images.")
    take = np.random.default_rng([seed, step]).choice(len(labels), batch_size, replace=False)
    return labels[take], modality[take], positions[take]


def _flat_index(index: IdentityIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, modality, position) of every indexed image, modality-major."""
    labels, modality, positions = [], [], []
    for m, per_label in enumerate(index.positions):
        for label, pos in enumerate(per_label):
            labels.append(np.full(len(pos), label))
            modality.append(np.full(len(pos), m))
            positions.append(pos)
    return (
        np.concatenate(labels).astype(np.int32),
        np.concatenate(modality).astype(np.int32),
        np.concatenate(positions).astype(np.int64),
    )
