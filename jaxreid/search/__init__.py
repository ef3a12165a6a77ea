"""Search of query embeddings in galleries of embeddings.

  topk      `top_k_search`: the exact chunked top-k kernel on the default JAX device (no
            Q x N matrix in memory)
  npz_file  the one-file .npz format of galleries and indexes: atomic writing, checked
            reading
  index     `make_index` / `load_index`: one interface over the exact kernel and FAISS
            (flat, IVF, HNSW) for galleries of millions
  open_set  `choose_threshold`: the open-set distance threshold for a target false-match rate
  gallery   `Gallery`: embeddings with ids, cameras, modality and file names, searchable
            (exactly or through an index), with an open-set threshold, stored as one .npz file

Each module imports only the ones listed above it.
"""

from jaxreid.search import index, open_set
from jaxreid.search.gallery import Gallery
from jaxreid.search.index import SearchIndex, load_index, make_index
from jaxreid.search.open_set import OpenSetThreshold, choose_threshold
from jaxreid.search.topk import DEFAULT_CHUNK_SIZE, DEFAULT_QUERY_CHUNK_SIZE, top_k_search

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_QUERY_CHUNK_SIZE",
    "Gallery",
    "OpenSetThreshold",
    "SearchIndex",
    "choose_threshold",
    "index",
    "load_index",
    "make_index",
    "open_set",
    "top_k_search",
]
