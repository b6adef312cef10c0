"""Search: one module per signal or step, put together by :mod:`kosearch.search.hybrid`.

- :mod:`kosearch.search.filters`: the ``where`` of a query, as SQL with bound parameters;
- :mod:`kosearch.search.dense`: top-k by vector similarity through the store's ANN index;
- :mod:`kosearch.search.morphemes`: Korean text to lexical tokens (Kiwi morphemes), for documents and queries;
- :mod:`kosearch.search.bm25`: BM25 scores of tokenised documents for a tokenised query;
- :mod:`kosearch.search.completion`: the BM25 of dense candidates the lexical top list missed, for fusion;
- :mod:`kosearch.search.fusion`: one ranking from a dense and a lexical one (convex mix of z-scores, or RRF);
- :mod:`kosearch.search.grouping`: a ranking of units cut to one per document;
- :mod:`kosearch.search.highlight`: the query's morphemes as spans of each hit, and a passage's best sentence.
"""
