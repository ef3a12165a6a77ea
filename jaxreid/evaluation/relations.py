"""Which gallery images are true matches of a query and which its removal rule takes out.

`Relations` encodes the identity, camera, location and frame labels of a query set and a
gallery as integer codes once, then, for a block of query rows of the distance matrix,
sets the removed entries to +inf and lists the kept true matches (`Relations.apply`).
The removal rules are those of `jaxreid.evaluation.ranking.rank`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

REMOVAL_RULES = ("same_camera", "same_location", "paired_frame", "none")

# Wu et al. 2017, evaluation/evaluation_SYSU_MM01.m: `cam_id = [1 2 2 4 5 6]`, "camera 2 and
# 3 are in the same location". Cameras not listed are their own location.
SYSU_LOCATIONS: Mapping[int, int] = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 6}


def as_1d(x, name: str, n: int | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(
            f"{name}: expected {n} entries to match the distance matrix, got {x.shape[0]}"
        )
    return x


def _joint_codes(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes such that q_code[i] == g_code[j] iff q[i] == g[j] (any comparable dtype)."""
    both = np.concatenate([q, g])
    _, inv = np.unique(both, return_inverse=True)
    inv = inv.reshape(-1).astype(np.int64)
    return inv[: len(q)], inv[len(q) :]


def _frame_codes(q: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of frame keys; empty or None keys are unpaired and never match anything."""
    if q.dtype.kind in "iu" and g.dtype.kind in "iu":
        return _joint_codes(q, g)

    def as_str(x):
        return np.array(
            [
                "" if v is None else v.decode() if isinstance(v, bytes) else str(v)
                for v in x.tolist()
            ],
            dtype=str,
        )

    qs, gs = as_str(q), as_str(g)
    qc, gc = _joint_codes(qs, gs)
    qc[qs == ""] = -1
    gc[gs == ""] = -2
    return qc, gc


class _KeyIndex:
    """All (query, gallery) pairs with equal integer keys, rows then gallery order."""

    def __init__(self, gallery_keys: np.ndarray):
        self.perm = np.argsort(gallery_keys, kind="stable")
        self.sorted = gallery_keys[self.perm]

    def pairs(self, query_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.searchsorted(self.sorted, query_keys, "left")
        hi = np.searchsorted(self.sorted, query_keys, "right")
        counts = hi - lo
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(query_keys)), counts)
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.perm[np.repeat(lo, counts) + offsets]
        return rows, cols


class Relations:
    """Which gallery images are true matches and which are removed, per query."""

    def __init__(
        self,
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        removal,
        query_frames,
        gallery_frames,
        locations,
        num_query,
        num_gallery,
    ):
        if removal not in REMOVAL_RULES:
            raise ValueError(f"removal={removal!r}; expected one of {REMOVAL_RULES}")
        self.removal = removal
        q_ids = as_1d(query_ids, "query_ids", num_query)
        g_ids = as_1d(gallery_ids, "gallery_ids", num_gallery)
        self.q_id, self.g_id = _joint_codes(q_ids, g_ids)
        self.id_index = _KeyIndex(self.g_id)
        if removal in ("same_camera", "same_location"):
            if query_cams is None or gallery_cams is None:
                raise ValueError(
                    f"removal={removal!r} needs query_cams and gallery_cams; "
                    "pass removal='none' to keep every gallery image"
                )
            q_cams = as_1d(query_cams, "query_cams", num_query)
            g_cams = as_1d(gallery_cams, "gallery_cams", num_gallery)
        if removal == "same_camera":
            self.q_cam, self.g_cam = _joint_codes(q_cams, g_cams)
            n_cam = int(max(self.q_cam.max(initial=0), self.g_cam.max(initial=0))) + 1
            self.g_idcam_index = _KeyIndex(self.g_id * n_cam + self.g_cam)
            self.q_idcam = self.q_id * n_cam + self.q_cam
        elif removal == "same_location":
            loc = dict(SYSU_LOCATIONS if locations is None else locations)
            self.q_loc = np.array([loc.get(c, c) for c in q_cams.tolist()])
            self.g_loc = np.array([loc.get(c, c) for c in g_cams.tolist()])
            self.q_loc, self.g_loc = _joint_codes(self.q_loc, self.g_loc)
            self.g_cols_by_loc = {
                int(v): np.nonzero(self.g_loc == v)[0] for v in np.unique(self.g_loc)
            }
        elif removal == "paired_frame":
            if query_frames is None or gallery_frames is None:
                raise ValueError("removal='paired_frame' needs query_frames and gallery_frames")
            qf = as_1d(query_frames, "query_frames", num_query)
            gf = as_1d(gallery_frames, "gallery_frames", num_gallery)
            self.q_frame, self.g_frame = _frame_codes(qf, gf)
            self.frame_index = _KeyIndex(self.g_frame)

    def apply(self, block: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Sets removed entries of `block` (rows start..) to +inf; returns kept true matches.

        Returns (rows, cols): row within the block and gallery column of every kept true
        match, sorted by row, then by column.
        """
        n = block.shape[0]
        sl = slice(start, start + n)
        rows, cols = self.id_index.pairs(self.q_id[sl])
        if self.removal == "same_camera":
            r, c = self.g_idcam_index.pairs(self.q_idcam[sl])
            block[r, c] = np.inf
            keep = self.g_cam[cols] != self.q_cam[sl][rows]
        elif self.removal == "same_location":
            q_loc = self.q_loc[sl]
            for value in np.unique(q_loc):
                g_cols = self.g_cols_by_loc.get(int(value))
                if g_cols is not None and len(g_cols):
                    block[np.ix_(np.nonzero(q_loc == value)[0], g_cols)] = np.inf
            keep = self.g_loc[cols] != q_loc[rows]
        elif self.removal == "paired_frame":
            r, c = self.frame_index.pairs(self.q_frame[sl])
            block[r, c] = np.inf
            keep = self.g_frame[cols] != self.q_frame[sl][rows]
        else:
            return rows, cols
        return rows[keep], cols[keep]
