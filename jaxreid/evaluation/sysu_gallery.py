"""SYSU-MM01's official files and gallery sampling (Wu et al. 2017; the protocol itself:
jaxreid.evaluation.sysu).

Gallery selection:
  'official'  rand_perm_cam{camera}{person}(trial, 1:shots): 1-based indices of the chosen
              images among that (camera, person)'s images in file-name order. Gallery order:
              camera, then person id, then the order of the permutation (get_testing_set.m).
  'seeded'    the widely used Python re-implementation (mangye16/Cross-Modal-Re-ID-baseline,
              data_manager.process_gallery_sysu): `random.seed(trial)`, then for each person
              id in ascending order and each gallery camera in order, `random.choice` over that
              folder's files sorted by name; trials are seeded 0..trials-1. That code has no
              multi-shot; for shots > 1 jaxreid draws `random.sample(files, shots)` at the same
              place in the same loop (a jaxreid extension, not a published protocol).
"""

from __future__ import annotations

import os
import random
from typing import Mapping

import numpy as np

from jaxreid.config import choices

SYSU_QUERY_CAMERAS = (3, 6)  # Wu et al. 2017, evaluation_SYSU_MM01.m: probe_cam_list
SYSU_GALLERY_CAMERAS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}  # gallery_cam_list
SYSU_SHOTS = (1, 10)  # setting.number_shot: 1 single-shot, 10 multi-shot
SYSU_TRIALS = 10  # rows of rand_perm_cam{c}{p}
SYSU_SETTINGS = choices.SYSU_SETTINGS  # the grid of Tekeli 2019, Table 3
SAMPLERS = choices.SYSU_SAMPLERS

Permutations = Mapping[tuple[int, int], np.ndarray]


def _loadmat(path, variable: str):
    from scipy.io import loadmat  # local: scipy is only needed to read the .mat files

    path = os.fspath(path)
    try:
        content = loadmat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    if variable not in content:
        found = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(f"{path}: variable {variable!r} not found (found {found})")
    return content[variable]


def load_sysu_permutations(perm_file) -> dict[tuple[int, int], np.ndarray]:
    """Reads rand_perm_cam.mat of the official SYSU-MM01 evaluation code.

    The file holds `rand_perm_cam`, a 6 x 1 MATLAB cell (one per camera) of cells indexed
    by person id (1-based); entry {c}{p} is a [trials, n] array whose row t is a 1-based
    permutation of the n images of person p in camera c, in file-name order.

    Returns:
      {(camera, person_id): [trials, n] int64 array of 1-based image indices}, for every
      non-empty entry.
    """
    cells = _loadmat(perm_file, "rand_perm_cam")
    cameras = np.asarray(cells, dtype=object).reshape(-1)
    out: dict[tuple[int, int], np.ndarray] = {}
    for cam_index, cam_cell in enumerate(cameras, start=1):
        persons = np.asarray(cam_cell, dtype=object).reshape(-1)
        for person, perm in enumerate(persons, start=1):
            perm = np.asarray(perm)
            if perm.size == 0:
                continue
            if perm.ndim != 2:
                raise ValueError(
                    f"{os.fspath(perm_file)}: rand_perm_cam{{{cam_index}}}{{{person}}} has shape "
                    f"{perm.shape}; expected [trials, n_images]"
                )
            # stored as uint8 in the official file: widen before any arithmetic
            perm = perm.astype(np.int64)
            if perm.min() < 1 or perm.max() > perm.shape[1]:
                raise ValueError(
                    f"{os.fspath(perm_file)}: rand_perm_cam{{{cam_index}}}{{{person}}} holds "
                    f"indices {perm.min()}..{perm.max()}; expected 1..{perm.shape[1]}"
                )
            out[(cam_index, person)] = perm
    return out


def load_sysu_ids(path) -> np.ndarray:
    """Person ids of a SYSU-MM01 split file (test_id.mat / train_id.mat, variable `id`)."""
    return np.asarray(_loadmat(path, "id")).reshape(-1).astype(np.int64)


def _image_groups(gallery_ids, gallery_cams, gallery_index) -> dict[tuple[int, int], np.ndarray]:
    """{(camera, person): gallery rows ordered by their 1-based file-name position}."""
    ids = np.asarray(gallery_ids).astype(np.int64)
    cams = np.asarray(gallery_cams).astype(np.int64)
    index = np.asarray(gallery_index).astype(np.int64)
    if not (ids.shape == cams.shape == index.shape) or ids.ndim != 1:
        raise ValueError(
            "gallery_ids, gallery_cams and gallery_index must be 1-D arrays of one length, got "
            f"shapes {ids.shape}, {cams.shape}, {index.shape}"
        )
    order = np.lexsort((index, ids, cams))
    keys = np.stack([cams[order], ids[order]], axis=1)
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    ends = np.r_[starts[1:], len(order)]
    groups = {}
    for a, b in zip(starts, ends):
        cam, pid = int(keys[a, 0]), int(keys[a, 1])
        rows = order[a:b]
        expected = np.arange(1, b - a + 1)
        if not np.array_equal(index[rows], expected):
            raise ValueError(
                f"gallery_index of camera {cam}, person {pid}: expected the 1-based positions "
                f"1..{b - a} (file-name order), got {sorted(index[rows].tolist())}"
            )
        groups[(cam, pid)] = rows
    return groups


def sysu_gallery_selection(
    gallery_ids,
    gallery_cams,
    gallery_index,
    *,
    mode: str = "all",
    shots: int = 1,
    trial: int = 0,
    sampler: str = "official",
    permutations: Permutations | None = None,
) -> np.ndarray:
    """Gallery rows of one SYSU-MM01 trial, in the reference code's gallery order.

    Args:
      gallery_ids, gallery_cams, gallery_index: [N] person id, camera (1-6) and 1-based
        position in its (camera, person) folder in file-name order, of every RGB test image.
      mode: 'all' (cameras 1, 2, 4, 5) or 'indoor' (cameras 1, 2).
      shots: images per (camera, person): 1 (single-shot) or 10 (multi-shot).
      trial: 0-based trial (row of the permutation file; seed of the 'seeded' sampler).
      sampler: 'official' (needs `permutations`) or 'seeded' (see module docstring).
      permutations: result of `load_sysu_permutations`.

    Returns:
      [n_selected] int64 indices into the gallery arrays.
    """
    groups = _image_groups(gallery_ids, gallery_cams, gallery_index)
    return _select(groups, mode, shots, trial, sampler, permutations)


def _select(groups, mode, shots, trial, sampler, permutations) -> np.ndarray:
    """sysu_gallery_selection on the result of _image_groups."""
    if mode not in SYSU_GALLERY_CAMERAS:
        raise ValueError(f"mode={mode!r}; expected one of {tuple(SYSU_GALLERY_CAMERAS)}")
    if int(shots) < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}; expected one of {SAMPLERS}")
    shots, trial = int(shots), int(trial)
    cams = SYSU_GALLERY_CAMERAS[mode]
    persons = sorted({pid for (cam, pid) in groups if cam in cams})

    def check_shots(cam, pid, n):
        if shots > n:
            raise ValueError(
                f"camera {cam}, person {pid} has {n} gallery images, fewer than shots={shots}"
            )

    selected = []
    if sampler == "official":
        if permutations is None:
            raise ValueError("sampler='official' needs the permutation file rand_perm_cam.mat")
        for cam in cams:  # get_testing_set.m: cameras, then person ids, then permutation order
            for pid in persons:
                rows = groups.get((cam, pid))
                perm = permutations.get((cam, pid))
                if rows is None:
                    if perm is not None and perm.shape[1] > 0:
                        raise ValueError(
                            f"the permutation file lists {perm.shape[1]} images of person {pid} "
                            f"in camera {cam}, but the gallery has none; pass all RGB test images"
                        )
                    continue
                if perm is None:
                    raise ValueError(
                        f"the permutation file has no entry for camera {cam}, person {pid} "
                        f"({len(rows)} gallery images)"
                    )
                if perm.shape[1] != len(rows):
                    raise ValueError(
                        f"the permutation file has {perm.shape[1]} images for camera {cam}, "
                        f"person {pid}, but the gallery has {len(rows)}"
                    )
                if trial >= perm.shape[0]:
                    raise ValueError(
                        f"trial {trial} requested but the permutation file has {perm.shape[0]} "
                        f"trials (camera {cam}, person {pid})"
                    )
                check_shots(cam, pid, len(rows))
                # entries are 1..n: checked by load_sysu_permutations
                selected.append(rows[perm[trial, :shots] - 1])
    else:
        rng = random.Random(trial)  # == random.seed(trial) on the module-level generator
        for pid in persons:  # data_manager.process_gallery_sysu: ids sorted, then cameras
            for cam in cams:
                rows = groups.get((cam, pid))
                if rows is None:
                    continue
                check_shots(cam, pid, len(rows))
                if shots == 1:
                    # random.choice(files) == files[rng._randbelow(len(files))]: only the length
                    # matters, so choosing from range(n) picks the same file
                    selected.append(rows[[rng.choice(range(len(rows)))]])
                else:
                    selected.append(rows[rng.sample(range(len(rows)), shots)])
    if not selected:
        return np.zeros(0, np.int64)
    return np.concatenate(selected).astype(np.int64)
