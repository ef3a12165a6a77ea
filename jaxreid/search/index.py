"""Search indexes over gallery embeddings: exact on-device search, and FAISS (flat, IVF, HNSW).

One interface, `SearchIndex`: `add(embeddings)`, `search(queries, k)` -> (distances [Q, k]
float32 ascending, indices [Q, k] int64), `save(path)` / `load_index(path)`, `len()`.
Distances are those of `jaxreid.evaluation.distances` whatever the backend:

    euclidean     FAISS L2 (squared) -> square root
    sqeuclidean   FAISS L2
    cosine        rows L2-normalised, FAISS inner product -> 1 - <q, g>

    index = make_index("faiss", metric="cosine", kind="hnsw", m=32, ef_search=128)
    index.add(gallery_embeddings)                 # again later to append
    distances, indices = index.search(query_embeddings, k=10)
    index.save("gallery.index.npz"); index = load_index("gallery.index.npz")

Backends:
  'exact'  `jaxreid.search.top_k_search`'s chunked kernel on the default JAX device; every
           metric of jaxreid.evaluation; ties ordered by gallery index.
  'faiss'  `faiss-cpu` (GPU FAISS when installed and `gpu=True`); kinds:
           'flat' exact brute force (Johnson et al. 2019, "Billion-scale similarity search
           with GPUs"); 'ivf' inverted lists over a k-means coarse quantiser, `nlist`
           lists, `nprobe` searched (Jegou et al. 2011); 'hnsw' a hierarchical navigable
           small-world graph, `m` links per node, `ef_construction` / `ef_search` beam
           widths (Malkov & Yashunin 2018). IVF trains its quantiser on the first `add`
           (at least `nlist` rows; FAISS advises 39 per list for a good quantiser, but the build
           does not print FAISS's warning when there are fewer). Approximate kinds may return
           fewer than k hits for a query: index -1, distance +inf.
faiss is imported only when a FAISS index is made or loaded (`pip install "jaxreid[export]"`).
"""

from __future__ import annotations

import abc
import json
import os

import numpy as np

from jaxreid.evaluation.distances import as_features, canonical_metric
from jaxreid.search import npz_file, topk
from jaxreid.search.topk import check_k

BACKENDS = ("exact", "faiss")
FAISS_KINDS = ("flat", "ivf", "hnsw")
# Metrics FAISS computes (L2 and inner product); l1 / linf stay with the exact backend.
FAISS_METRICS = ("euclidean", "sqeuclidean", "cosine")
# Defaults: nlist ~ sqrt(N) for 1e5-1e6 rows (FAISS wiki, "Guidelines to choose an index");
# HNSW M=32, efConstruction=40 are FAISS's defaults for IndexHNSWFlat.
DEFAULT_PARAMS = {
    "flat": {},
    "ivf": {"nlist": 1024, "nprobe": 16},
    "hnsw": {"m": 32, "ef_construction": 40, "ef_search": 64},
}
_FORMAT_VERSION = 1


class SearchIndex(abc.ABC):
    """k-nearest-neighbour search over embeddings [N, D] with one metric."""

    metric: str
    dim: int

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def add(self, embeddings) -> SearchIndex:
        """Appends [M, D] float embeddings (rows N..N+M-1); returns self."""

    @abc.abstractmethod
    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """[Q, D] queries -> distances [Q, min(k, N)] float32 ascending, indices int64."""

    @abc.abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    def _config(self) -> dict:
        return {}

    def save(self, path) -> str:
        """Writes the index to one .npz (no pickles), atomically (temp file, then
        os.replace): 'format_version', 'metric', 'dim', 'config' (JSON, with the backend)
        and the backend's arrays. Returns `path` as a string."""
        config = json.dumps({"backend": self.backend, **self._config()})
        arrays = {
            "format_version": np.int64(_FORMAT_VERSION),
            "metric": np.str_(self.metric),
            "dim": np.int64(self.dim),
            "config": np.str_(config),
        }
        return npz_file.write(path, {**arrays, **self._state()}, what="index")

    def _check_queries(self, queries) -> np.ndarray:
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        q = as_features(q, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[1]} dims but the index has {self.dim}")
        return q

    def _check_rows(self, embeddings) -> np.ndarray:
        emb = as_features(embeddings, "embeddings")
        if emb.shape[1] != self.dim:
            raise ValueError(f"embeddings have {emb.shape[1]} dims, the index has {self.dim}")
        return emb


class ExactIndex(SearchIndex):
    """Exact top-k on the default JAX device (`jaxreid.search.top_k_search`'s kernel).

    Args:
      dim: embedding size D.
      metric: any metric of `jaxreid.evaluation.distances` (or an alias).
      chunk_size, query_chunk_size: gallery / query rows per kernel call.
    """

    backend = "exact"

    def __init__(
        self, dim: int, metric: str = "euclidean", *, chunk_size=None, query_chunk_size=None
    ):
        self.metric = canonical_metric(metric)
        self.dim = int(dim)
        self.chunk_size = int(chunk_size or topk.DEFAULT_CHUNK_SIZE)
        self.query_chunk_size = int(query_chunk_size or topk.DEFAULT_QUERY_CHUNK_SIZE)
        self.embeddings = np.zeros((0, self.dim), np.float32)
        self._chunks = None

    def __len__(self) -> int:
        return len(self.embeddings)

    def add(self, embeddings) -> ExactIndex:
        self.embeddings = np.concatenate([self.embeddings, self._check_rows(embeddings)])
        self._chunks = None
        return self

    def search(self, queries, k: int = 10):
        q, k = self._check_queries(queries), check_k(k)
        chunk = min(self.chunk_size, max(len(self), 1))
        if self._chunks is None:  # the gallery stays on device between searches
            self._chunks = topk.device_chunks(self.embeddings, self.metric, chunk)
        return topk.search_chunks(q, len(self), self._chunks, k, self.metric, self.query_chunk_size)

    def _config(self) -> dict:
        return {"chunk_size": self.chunk_size, "query_chunk_size": self.query_chunk_size}

    def _state(self):
        return {"embeddings": self.embeddings}


def _faiss():
    try:
        import faiss  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ImportError(
            "the FAISS backend needs faiss: pip install faiss-cpu (or 'jaxreid[export]')"
        ) from None
    return faiss


class FaissIndex(SearchIndex):
    """A FAISS index ('flat', 'ivf' or 'hnsw') with jaxreid's distances.

    Args:
      dim: embedding size D.
      metric: 'euclidean' | 'sqeuclidean' | 'cosine' (FAISS_METRICS).
      kind: 'flat' | 'ivf' | 'hnsw' (FAISS_KINDS).
      gpu: move the index to the GPUs when GPU FAISS finds any (flat and ivf).
      **params: ivf: nlist (lists), nprobe (lists searched); hnsw: m (links per node),
        ef_construction, ef_search. Defaults: DEFAULT_PARAMS.

    Raises:
      ValueError: an unknown kind, metric or parameter (named with the valid ones).
    """

    backend = "faiss"

    def __init__(
        self, dim: int, metric: str = "euclidean", kind: str = "flat", *, gpu=False, **params
    ):
        faiss = _faiss()
        self.metric = canonical_metric(metric)
        if self.metric not in FAISS_METRICS:
            raise ValueError(
                f"metric {metric!r} is not one FAISS computes; expected one of {FAISS_METRICS} "
                "(use the 'exact' backend for l1 / linf)"
            )
        if kind not in FAISS_KINDS:
            raise ValueError(f"kind={kind!r}; expected one of {FAISS_KINDS}")
        unknown = sorted(set(params) - set(DEFAULT_PARAMS[kind]))
        if unknown:
            raise ValueError(
                f"unknown {kind} parameter(s) {unknown}; expected some of {sorted(DEFAULT_PARAMS[kind])}"
            )
        self.dim, self.kind = int(dim), kind
        self.params = {**DEFAULT_PARAMS[kind], **{k: int(v) for k, v in params.items()}}
        inner = self.metric == "cosine"
        faiss_metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
        if kind == "flat":
            index = faiss.IndexFlat(self.dim, faiss_metric)
        elif kind == "ivf":
            self._quantizer = faiss.IndexFlat(self.dim, faiss_metric)
            index = faiss.IndexIVFFlat(
                self._quantizer, self.dim, self.params["nlist"], faiss_metric
            )
            # FAISS prints "WARNING clustering N points to K centroids" to the C stderr for
            # fewer than 39 rows a list; it only prints (the k-means is the same, checked),
            # and the advice is in this class's docstring, so the small builds stay quiet.
            index.cp.min_points_per_centroid = 1
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.params["m"], faiss_metric)
            index.hnsw.efConstruction = self.params["ef_construction"]
        if gpu and kind != "hnsw" and faiss.get_num_gpus() > 0:  # pragma: no cover - GPU only
            index = faiss.index_cpu_to_all_gpus(index)
        self.index = index
        self._set_search_params()

    def _set_search_params(self) -> None:
        if self.kind == "ivf":
            self.index.nprobe = self.params["nprobe"]
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = self.params["ef_search"]

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if self.metric == "cosine":
            # As jaxreid.evaluation's cosine: x / max(||x||, eps).
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(x, np.float32)

    def add(self, embeddings) -> FaissIndex:
        x = self._prepare(self._check_rows(embeddings))
        if not self.index.is_trained:
            if len(x) < self.params.get("nlist", 0):
                raise ValueError(
                    f"an IVF index with nlist={self.params['nlist']} needs at least that many "
                    f"rows in its first add to train its quantiser; got {len(x)}"
                )
            self.index.train(x)
        self.index.add(x)
        return self

    def search(self, queries, k: int = 10):
        q, k = self._check_queries(queries), check_k(k)
        k = min(k, len(self))
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)
        raw, indices = self.index.search(self._prepare(q), k)
        missing = indices < 0
        if self.metric == "cosine":
            distances = 1.0 - raw
        elif self.metric == "euclidean":
            distances = np.sqrt(np.maximum(raw, 0.0))
        else:
            distances = np.maximum(raw, 0.0)
        distances = np.where(missing, np.inf, distances).astype(np.float32)
        return distances, indices.astype(np.int64)

    def _config(self) -> dict:
        return {"kind": self.kind, **self.params}

    def _state(self):
        faiss = _faiss()
        index = self.index
        if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:  # pragma: no cover
            index = faiss.index_gpu_to_cpu(index)
        return {"faiss_index": faiss.serialize_index(index)}


def make_index(
    backend: str = "exact",
    metric: str = "euclidean",
    *,
    dim: int | None = None,
    embeddings=None,
    **params,
) -> SearchIndex:
    """A new index of `backend` ('exact' | 'faiss'), filled with `embeddings` if given.

    Args:
      dim: embedding size (taken from `embeddings` when given).
      **params: FaissIndex's kind, gpu and kind parameters; ExactIndex's chunk sizes.
    """
    if embeddings is not None:
        embeddings = as_features(embeddings, "embeddings")
        dim = embeddings.shape[1] if dim is None else dim
    if dim is None:
        raise ValueError("make_index: give `dim` or `embeddings`")
    if backend == "exact":
        index = ExactIndex(dim, metric, **params)
    elif backend == "faiss":
        index = FaissIndex(dim, metric, **params)
    else:
        raise ValueError(f"backend={backend!r}; expected one of {BACKENDS}")
    if embeddings is not None:
        index.add(embeddings)
    return index


def load_index(path) -> SearchIndex:
    """Reads an index written by `SearchIndex.save`.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: not an index file (the message names the file and the problem).
    """
    path = os.fspath(path)
    data = npz_file.read(
        path,
        what="index",
        writer="SearchIndex.save",
        required=("format_version", "metric", "dim", "config"),
        versions=(_FORMAT_VERSION,),
    )
    config = json.loads(str(data["config"]))
    metric, dim = str(data["metric"]), int(data["dim"])
    backend = config.pop("backend")
    if backend == "exact":
        index = ExactIndex(dim, metric, **config)
        index.add(data["embeddings"])
    elif backend == "faiss":
        kind = config.pop("kind")
        index = FaissIndex(dim, metric, kind, **config)
        index.index = _faiss().deserialize_index(data["faiss_index"])
        index._set_search_params()  # pylint: disable=protected-access
    else:
        raise ValueError(f"index file {path!r}: backend {backend!r}; expected one of {BACKENDS}")
    return index


__all__ = [
    "BACKENDS",
    "DEFAULT_PARAMS",
    "FAISS_KINDS",
    "FAISS_METRICS",
    "ExactIndex",
    "FaissIndex",
    "SearchIndex",
    "load_index",
    "make_index",
]
