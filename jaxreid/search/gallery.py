"""`Gallery`: embeddings with their metadata, searchable on device, stored as one .npz file.

    gallery = Gallery(embeddings, ids=ids, cams=cams, modality="depth", filenames=names)
    gallery.save("gallery.npz")
    gallery = Gallery.load("gallery.npz")
    distances, indices = gallery.search(query_embeddings, k=10)   # [Q, 10] each
    matched_ids = gallery.ids[indices]

A gallery can search through any `jaxreid.search.index.SearchIndex` backend (`use_index`:
FAISS flat, IVF or HNSW for galleries of millions) and carries an open-set threshold
(`jaxreid.search.open_set`; `set_threshold`, `identify`) that its .npz stores.
"""

from __future__ import annotations

import os

import numpy as np

from jaxreid.evaluation.distances import as_features, canonical_metric
from jaxreid.search import index as index_lib
from jaxreid.search import npz_file, open_set
from jaxreid.search.topk import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_QUERY_CHUNK_SIZE,
    check_chunk,
    check_k,
    device_chunks,
    search_chunks,
    top_k_search,
)

# Bumped when the .npz layout changes; `Gallery.load` rejects unknown versions.
# 2: the optional open-set threshold keys (_THRESHOLD_KEYS), absent in version 1 files.
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_KEYS = ("format_version", "metric", "embeddings", "ids", "cams", "modality", "filenames")
_THRESHOLD_KEYS = (
    "threshold_distance",
    "threshold_metric",
    "threshold_target_false_match_rate",
    "threshold_false_match_rate",
    "threshold_true_match_rate",
    "threshold_num_mated",
    "threshold_num_non_mated",
)


def _int_column(values, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full((n,), -1, np.int64)
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full((n,), arr)
    if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(
            f"{name}: expected [{n}] integers (one per embedding), got shape {arr.shape} "
            f"dtype {arr.dtype}"
        )
    return arr.astype(np.int64)


def _str_column(values, n: int, name: str) -> np.ndarray:
    if values is None:
        values = ""
    if isinstance(values, (str, bytes)):
        values = [values] * n
    arr = np.asarray(
        [
            os.fsdecode(v) if isinstance(v, (bytes, os.PathLike)) else str(v)
            for v in np.asarray(values, dtype=object).reshape(-1)
        ],
        dtype=str,
    )
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected {n} strings (one per embedding), got {arr.shape[0]}")
    return arr


class Gallery:
    """Embeddings with their metadata, searchable on device and stored as one .npz file.

    Attributes (NumPy arrays, row i describes embedding i):
        embeddings: [N, D] float32.
        ids: [N] int64 person ids (-1 when unknown).
        cams: [N] int64 camera ids (-1 when unknown).
        modality: [N] str, e.g. 'rgb' | 'depth' | 'infrared' | 'thermal' ('' when unknown).
        filenames: [N] str image paths ('' when unknown).
        metric: default metric of `search` (canonical name, see `jaxreid.evaluation`).
        threshold: `jaxreid.search.open_set.OpenSetThreshold` for `identify`, or None.
        index: the `jaxreid.search.index.SearchIndex` that `search` uses for `metric` (None: the
            exact on-device search).
    """

    def __init__(
        self,
        embeddings=None,
        ids=None,
        cams=None,
        modality=None,
        filenames=None,
        *,
        metric: str = "euclidean",
        dim: int | None = None,
    ):
        """Args as the attributes; `ids`/`cams`/`modality`/`filenames` may be None (unknown)
        and `modality` a single string for all rows. `embeddings=None` with `dim` makes an
        empty gallery to `add` to."""
        self.metric = canonical_metric(metric)
        if embeddings is None:
            if dim is None:
                raise ValueError("Gallery: give embeddings [N, D] or the dimension `dim`")
            embeddings = np.zeros((0, int(dim)), np.float32)
        emb = as_features(embeddings, "embeddings")
        n = emb.shape[0]
        self.embeddings = emb
        self.ids = _int_column(ids, n, "ids")
        self.cams = _int_column(cams, n, "cams")
        self.modality = _str_column(modality, n, "modality")
        self.filenames = _str_column(filenames, n, "filenames")
        self._cache = None  # (chunk_size, metric, device chunks)
        self.threshold = None
        self.index = None

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def __repr__(self) -> str:
        mods = sorted(set(self.modality.tolist()))
        return f"Gallery({len(self)} x {self.dim}, metric={self.metric!r}, modality={mods})"

    def add(self, embeddings, ids=None, cams=None, modality=None, filenames=None) -> Gallery:
        """Appends rows (same arguments as the constructor); returns self."""
        emb = as_features(embeddings, "embeddings")
        if emb.shape[1] != self.dim:
            raise ValueError(
                f"Gallery.add: embeddings have {emb.shape[1]} dims, the gallery has {self.dim}"
            )
        n = emb.shape[0]
        self.embeddings = np.concatenate([self.embeddings, emb])
        self.ids = np.concatenate([self.ids, _int_column(ids, n, "ids")])
        self.cams = np.concatenate([self.cams, _int_column(cams, n, "cams")])
        self.modality = np.concatenate([self.modality, _str_column(modality, n, "modality")])
        self.filenames = np.concatenate([self.filenames, _str_column(filenames, n, "filenames")])
        self._cache = None
        if self.index is not None:
            self.index.add(emb)
        return self

    def use_index(self, backend: str = "faiss", **params) -> Gallery:
        """Builds a `jaxreid.search.index` index of `backend` ('exact' | 'faiss') over the
        embeddings, with the gallery's metric; `search` then uses it for that metric and
        `add` appends to it. Returns self.

        Args:
          **params: `jaxreid.search.index.make_index` parameters, e.g. kind='hnsw', m=32,
            ef_search=128, or kind='ivf', nlist=1024, nprobe=16.
        """
        self.index = index_lib.make_index(
            backend, self.metric, dim=self.dim, embeddings=self.embeddings, **params
        )
        return self

    def set_threshold(self, threshold) -> Gallery:
        """Stores an open-set threshold: a `jaxreid.search.open_set.OpenSetThreshold` (from
        `choose_threshold`), a distance (float, for the gallery's metric) or None."""
        if threshold is not None and not isinstance(threshold, open_set.OpenSetThreshold):
            nan = float("nan")
            threshold = open_set.OpenSetThreshold(
                float(threshold), self.metric, nan, nan, nan, 0, 0
            )
        self.threshold = threshold
        return self

    def identify(self, queries, k: int = 10, **search_args):
        """Open-set search: (distances [Q, k], indices [Q, k], matched [Q] bool), where
        matched is False for "not in the gallery" (nearest distance >= the threshold).

        Raises:
          ValueError: no threshold stored, or one for another metric than the search's.
        """
        if self.threshold is None:
            raise ValueError("Gallery.identify: no threshold; set_threshold(...) first")
        metric = canonical_metric(search_args.get("metric") or self.metric)
        if metric != self.threshold.metric:
            raise ValueError(
                f"the gallery's threshold is a {self.threshold.metric} distance; the search "
                f"uses {metric}"
            )
        distances, indices = self.search(queries, k, **search_args)
        return distances, indices, distances[:, 0] < self.threshold.distance

    def search(
        self,
        queries,
        k: int = 10,
        *,
        metric: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        query_chunk_size: int = DEFAULT_QUERY_CHUNK_SIZE,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest gallery rows of each query (see `top_k_search`).

        Args:
            queries: [Q, D] float embeddings (a single [D] vector is treated as Q = 1).
            k: neighbours per query, clamped to len(self).
            metric: overrides `self.metric`.
            chunk_size, query_chunk_size: rows per kernel call (gallery / queries).

        Returns:
            distances [Q, k] float32 ascending and indices [Q, k] int64 into this gallery
            (index `self.ids`, `self.filenames`, ... with them). Ties: lower index first.

        The gallery stays on device between calls with the same metric and chunk size.
        With an index (`use_index`), searches in the gallery's metric go through it.
        """
        metric = canonical_metric(metric or self.metric)
        if self.index is not None and metric == self.index.metric:
            return self.index.search(queries, k)
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        q = as_features(q, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[1]} dims but the gallery has {self.dim}")
        k = check_k(k)
        chunk_size = min(check_chunk(chunk_size, "chunk_size"), max(len(self), 1))
        query_chunk_size = check_chunk(query_chunk_size, "query_chunk_size")
        if self._cache is None or self._cache[:2] != (chunk_size, metric):
            self._cache = (chunk_size, metric, device_chunks(self.embeddings, metric, chunk_size))
        return search_chunks(q, len(self), self._cache[2], k, metric, query_chunk_size)

    def subset(self, rows) -> Gallery:
        """A new gallery of the given rows (int indices or a boolean mask)."""
        return Gallery(
            self.embeddings[rows],
            self.ids[rows],
            self.cams[rows],
            self.modality[rows],
            self.filenames[rows],
            metric=self.metric,
        ).set_threshold(self.threshold)

    def save(self, path) -> str:
        """Writes the gallery to one .npz file, atomically (temp file, then os.replace).

        Returns `path` as a string. The file holds the keys 'format_version', 'metric',
        'embeddings', 'ids', 'cams', 'modality', 'filenames' (no pickled objects), and with
        a threshold 'threshold_distance', 'threshold_metric',
        'threshold_target_false_match_rate', 'threshold_false_match_rate',
        'threshold_true_match_rate', 'threshold_num_mated', 'threshold_num_non_mated'.
        An index (`use_index`) is not stored: build it again after `load`, or save it on
        its own (`gallery.index.save`).
        """
        extra = {}
        if self.threshold is not None:
            extra = {f"threshold_{k}": np.asarray(v) for k, v in self.threshold.to_dict().items()}
        arrays = {
            "format_version": np.int64(_FORMAT_VERSION),
            "metric": np.str_(self.metric),
            "embeddings": self.embeddings,
            "ids": self.ids,
            "cams": self.cams,
            "modality": self.modality,
            "filenames": self.filenames,
        }
        return npz_file.write(path, {**arrays, **extra}, what="gallery")

    @classmethod
    def load(cls, path) -> Gallery:
        """Reads a gallery written by `save`.

        Raises:
            FileNotFoundError: no file at `path`.
            ValueError: not a gallery file; the message names the file and the missing or
                malformed key.
        """
        path = os.fspath(path)
        data = npz_file.read(
            path,
            what="gallery",
            writer="Gallery.save",
            required=_KEYS,
            versions=_READABLE_VERSIONS,
        )
        try:
            gallery = cls(
                data["embeddings"],
                data["ids"],
                data["cams"],
                data["modality"],
                data["filenames"],
                metric=str(data["metric"]),
            )
        except ValueError as e:
            raise ValueError(f"gallery file {path!r}: {e}") from None
        if "threshold_distance" in data:
            missing = [key for key in _THRESHOLD_KEYS if key not in data]
            if missing:
                raise ValueError(f"gallery file {path!r} has a threshold but lacks {missing}")
            fields = {key[len("threshold_") :]: data[key].item() for key in _THRESHOLD_KEYS}
            gallery.set_threshold(open_set.OpenSetThreshold(**fields))
        return gallery
