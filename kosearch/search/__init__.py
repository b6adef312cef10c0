"""Search: one module per signal or step (dense, lexical, fusion, filters, grouping)."""

from kosearch.search.dense import search_vectors

__all__ = ["search_vectors"]
