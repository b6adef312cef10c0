"""Where an index lives: vectors (FAISS), metadata (SQLite) and the protocol that keeps them in step."""

from kosearch.store.index_store import IndexStore, PendingChanges
from kosearch.store.metadata import MetadataStore
from kosearch.store.vectors import (
    DEFAULT_FACTORY,
    FaissVectorStore,
    TorchVectorStore,
    VectorStore,
    empty_vector_store,
    load_vector_store,
)

__all__ = [
    "DEFAULT_FACTORY",
    "FaissVectorStore",
    "IndexStore",
    "MetadataStore",
    "PendingChanges",
    "TorchVectorStore",
    "VectorStore",
    "empty_vector_store",
    "load_vector_store",
]
