"""Identity splits of the real datasets and cross-validation folds (NumPy only, no TensorFlow).

BIWI RGBD-ID and RobotPKU have no official split; the thesis defines a design set
(train + validation) and a test set of identities, Hafner 2018, appendix B.1 / B.2
(= appendix A.1 / A.2 of the paper version in the same file). The same lists are in the
thesis author's public code, `frhf/cross-modal-distillation-reidentification`,
`datasets/{biwi,pku}/splits.json` ("trainval" and "query"/"gallery").

BIWI ids are the 78 person *instances* of Zhuo et al. 2017 used by the thesis (the same
person in other clothes is another instance; Hafner 2018, §4.1.1): instance ids number the
(person, recording) pairs (person, training sequence) and (person, testing sequences) in
ascending order, see `jaxreid.datasets.biwi_rgbd_id.builder`.

SYSU-MM01 and RegDB ship their own split files; their builders read them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Hafner 2018, appendix B.1 (BIWI RGBD-ID): 40 design + 38 test = 78 instances.
BIWI_DESIGN_IDS = (
    0,
    1,
    4,
    5,
    6,
    7,
    9,
    11,
    12,
    13,
    15,
    16,
    17,
    18,
    19,
    20,
    25,
    26,
    34,
    35,
    38,
    39,
    40,
    43,
    50,
    56,
    57,
    58,
    59,
    61,
    62,
    65,
    66,
    67,
    69,
    70,
    73,
    74,
    76,
    77,
)
BIWI_TEST_IDS = (
    2,
    3,
    8,
    10,
    14,
    21,
    22,
    23,
    24,
    27,
    28,
    29,
    30,
    31,
    32,
    33,
    36,
    37,
    41,
    42,
    44,
    45,
    46,
    47,
    48,
    49,
    51,
    52,
    53,
    54,
    55,
    60,
    63,
    64,
    68,
    71,
    72,
    75,
)
BIWI_NUM_IDS = 78  # Hafner 2018, §4.1.1: 28 x 2 + 22 instances.

# Hafner 2018, appendix B.2 (RobotPKU): 50 design + 40 test = 90 persons.
ROBOTPKU_DESIGN_IDS = (
    0,
    2,
    3,
    15,
    16,
    18,
    19,
    20,
    21,
    22,
    23,
    25,
    27,
    28,
    29,
    30,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    41,
    43,
    44,
    45,
    46,
    47,
    52,
    54,
    55,
    58,
    59,
    60,
    63,
    66,
    67,
    68,
    72,
    73,
    74,
    77,
    78,
    80,
    82,
    83,
    84,
    87,
    88,
)
ROBOTPKU_TEST_IDS = (
    1,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    17,
    24,
    26,
    38,
    39,
    40,
    42,
    48,
    49,
    50,
    51,
    53,
    56,
    57,
    61,
    62,
    64,
    65,
    69,
    70,
    71,
    75,
    76,
    79,
    81,
    85,
    86,
    89,
)
ROBOTPKU_NUM_IDS = 90  # Hafner 2018, §4.1.2.

# SYSU-MM01 identity counts of the official exp/ files (Hafner 2018, §4.1.3).
SYSU_NUM_TRAIN_IDS, SYSU_NUM_VAL_IDS, SYSU_NUM_TEST_IDS = 296, 99, 96

# Validation identities per fold: Hafner 2018 §4.1.1 splits the 40 BIWI design instances
# into 32 train + 8 validation, §4.1.2 the 50 RobotPKU design persons into 40 + 10.
BIWI_NUM_VAL_IDS = 8
ROBOTPKU_NUM_VAL_IDS = 10

DEFAULT_NUM_FOLDS = 3  # Hafner 2018, §4.3.1: 3-fold cross-validation.
DEFAULT_FOLD_SEED = 0

DESIGN_TEST_IDS = {
    "biwi_rgbd_id": (BIWI_DESIGN_IDS, BIWI_TEST_IDS),
    "robotpku": (ROBOTPKU_DESIGN_IDS, ROBOTPKU_TEST_IDS),
}
NUM_VAL_IDS = {"biwi_rgbd_id": BIWI_NUM_VAL_IDS, "robotpku": ROBOTPKU_NUM_VAL_IDS}


def cross_validation_folds(
    design_ids: Sequence[int],
    num_folds: int = DEFAULT_NUM_FOLDS,
    seed: int = DEFAULT_FOLD_SEED,
    num_val_ids: int | None = None,
) -> list[dict]:
    """Draws `num_folds` train/validation identity splits of a design set.

    Hafner 2018 §4.3.1 / paper §5: "for each replication, a different validation subset is
    randomly extracted from within the design subset". The validation sets of the folds are
    disjoint (as are the five of the thesis author's `splits.json`): the sorted design ids
    are permuted once with `seed` and fold k validates on the k-th block of `num_val_ids`.
    The legacy `np.random.RandomState` is used because its stream is frozen across NumPy
    versions (NEP 19), so a recorded seed reproduces the folds.

    Args:
      design_ids: [D] ints, the design (train + validation) identities.
      num_folds: number of folds.
      seed: the seed to record with results.
      num_val_ids: validation identities per fold; default D // 5 (8 of 40 for BIWI, 10 of
        50 for RobotPKU, as in the thesis).

    Returns:
      `num_folds` dicts {'fold': k, 'seed': seed, 'train': [D - V] int32 sorted,
      'val': [V] int32 sorted}.
    """
    ids = np.asarray(design_ids)
    if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"design_ids={design_ids!r}; expected a non-empty 1-D sequence of ints")
    ids = np.sort(ids.astype(np.int64))
    if np.any(ids[1:] == ids[:-1]):
        dup = np.unique(ids[1:][ids[1:] == ids[:-1]])
        raise ValueError(f"design_ids has repeated ids {dup.tolist()}; expected distinct ids")
    if num_val_ids is None:
        num_val_ids = ids.size // 5
    if num_folds < 1 or num_val_ids < 1 or num_folds * num_val_ids > ids.size:
        raise ValueError(
            f"num_folds={num_folds} x num_val_ids={num_val_ids} disjoint validation sets need "
            f"{num_folds * num_val_ids} ids but the design set has {ids.size}; expected "
            "num_folds >= 1, num_val_ids >= 1 and num_folds * num_val_ids <= len(design_ids)"
        )
    perm = ids[np.random.RandomState(seed).permutation(ids.size)]
    folds = []
    for k in range(num_folds):
        val = np.sort(perm[k * num_val_ids : (k + 1) * num_val_ids])
        train = np.setdiff1d(ids, val)
        folds.append(
            {
                "fold": k,
                "seed": int(seed),
                "train": train.astype(np.int32),
                "val": val.astype(np.int32),
            }
        )
    return folds


def folds_from_splits_json(path, num_folds: int = DEFAULT_NUM_FOLDS) -> list[dict]:
    """The first `num_folds` folds of a `splits.json` of the thesis author's code.

    frhf/cross-modal-distillation-reidentification, datasets/{biwi,pku}/splits.json: a list
    of {'trainval', 'train', 'val', 'query', 'gallery'} id lists (5 entries, disjoint 'val'
    sets of 8 BIWI / 10 RobotPKU ids). Reading the user's copy reproduces the author's
    folds exactly; jaxreid does not ship them. Returns dicts like `cross_validation_folds`
    ('seed' is None: the author's draw is not seeded here).
    """
    import json
    import os

    with open(os.fspath(path)) as f:
        entries = json.load(f)
    if not isinstance(entries, list) or len(entries) < num_folds:
        raise ValueError(f"{path}: expected a JSON list of at least {num_folds} splits")
    folds = []
    for k, e in enumerate(entries[:num_folds]):
        missing = [key for key in ("train", "val") if key not in e]
        if missing:
            raise ValueError(
                f"{path}: split {k} has no {missing}; expected the author's splits.json format"
            )
        train, val = (
            np.sort(np.asarray(e["train"], np.int32)),
            np.sort(np.asarray(e["val"], np.int32)),
        )
        if np.intersect1d(train, val).size:
            raise ValueError(f"{path}: split {k} has ids in both 'train' and 'val'")
        folds.append({"fold": k, "seed": None, "train": train, "val": val})
    return folds


def design_test_ids(dataset: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(design ids, test ids) of 'biwi_rgbd_id' or 'robotpku' (Hafner 2018, appendix B)."""
    if dataset not in DESIGN_TEST_IDS:
        raise ValueError(f"dataset={dataset!r}; expected one of {sorted(DESIGN_TEST_IDS)}")
    return DESIGN_TEST_IDS[dataset]


def thesis_folds(
    dataset: str, seed: int = DEFAULT_FOLD_SEED, num_folds: int = DEFAULT_NUM_FOLDS
) -> list[dict]:
    """The 3 cross-validation folds of BIWI or RobotPKU with the thesis' validation size."""
    design, _ = design_test_ids(dataset)
    return cross_validation_folds(
        design, num_folds=num_folds, seed=seed, num_val_ids=NUM_VAL_IDS[dataset]
    )


__all__ = [
    "BIWI_DESIGN_IDS",
    "BIWI_TEST_IDS",
    "BIWI_NUM_IDS",
    "BIWI_NUM_VAL_IDS",
    "ROBOTPKU_DESIGN_IDS",
    "ROBOTPKU_TEST_IDS",
    "ROBOTPKU_NUM_IDS",
    "ROBOTPKU_NUM_VAL_IDS",
    "SYSU_NUM_TRAIN_IDS",
    "SYSU_NUM_VAL_IDS",
    "SYSU_NUM_TEST_IDS",
    "DEFAULT_NUM_FOLDS",
    "DEFAULT_FOLD_SEED",
    "cross_validation_folds",
    "design_test_ids",
    "folds_from_splits_json",
    "thesis_folds",
]
