"""Search: one module per signal or step.

- :mod:`kosearch.search.dense`: top-k by vector similarity through the store's ANN index;
- :mod:`kosearch.search.morphemes`: Korean text to lexical tokens (Kiwi morphemes), for documents and queries;
- :mod:`kosearch.search.bm25`: BM25 scores of tokenised documents for a tokenised query;
- :mod:`kosearch.search.fusion`: one ranking from a dense and a lexical one (convex mix or RRF).
"""

from kosearch.search.dense import search_vectors

__all__ = ["search_vectors"]
