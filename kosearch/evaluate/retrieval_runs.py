"""Which retrieval measurements one ``kosearch evaluate retrieval`` call makes, and making them.

A call names models or built indexes, optionally search modes and a grouping; this module decides
what that means (exact search with each model, or search through each index or through a temporary
index per model, one result per mode), refuses the combinations that cannot be measured, and yields
the results in order. The decision used to live in the CLI; here the CLI, the Python API and the
bench scripts share it, and the CLI only parses the options and prints the rows.

Example::

    from kosearch.evaluate import retrieval_runs, retrieval_set

    dataset = retrieval_set(from_sts="../shared/data/korsts/sts-test.tsv")
    for run in retrieval_runs(dataset, models=[("bundled", None)], modes=["dense", "hybrid"]):
        print(run.name, run.result.mode, run.result.mrr_at_10)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kosearch.data.beir import BeirDataset
from kosearch.errors import KosearchError
from kosearch.evaluate.encoding import ModelLike
from kosearch.evaluate.retrieval import RetrievalResult, evaluate_retrieval, evaluate_retrieval_modes


@dataclass(frozen=True)
class RetrievalRun:
    """One measured row: what was measured (as the caller named it) and its result."""

    name: str
    """The model name or index path as given (``"bundled"`` for the bundled model)."""
    result: RetrievalResult
    through_index: bool
    """True when the name is a built index (the row is then that index, searched with its own model)."""


def retrieval_runs(
    dataset: BeirDataset,
    *,
    models: Sequence[tuple[str, ModelLike]] | None = None,
    indexes: Sequence[str | Path] = (),
    modes: Sequence[str] | None = None,
    group_by: str | None = None,
    device: str | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
    announce: Callable[[str], None] | None = None,
    search_options: Mapping[str, Any] | None = None,
) -> Iterator[RetrievalRun]:
    """Measure ``dataset`` with each model (``(name, model)`` pairs; None: the bundled one) or each built index, per mode.

    Without ``indexes``, ``modes`` or ``group_by`` a model is scored by exact search (no index, no ANN
    error). With any of them every row goes through an index: the given ones, or a temporary index
    per model over the corpus (``announce`` is told before one is built, as it takes a while); each
    mode is one row. Results are yielded as they are made, so a caller can print them one by one;
    a combination that cannot be measured is refused here, before any work. ``search_options``
    (``bm25_k1``, ``bm25_b``, ``lexical_weight``) go to every search through an index.
    """
    if indexes and models:
        raise KosearchError("an index is evaluated with the model it was built with; drop --model or --index.")
    if search_options and any(value is not None for value in search_options.values()) and not (indexes or modes or group_by):
        raise KosearchError("--bm25-k1, --bm25-b and --lexical-weight apply to searches through an index: add --mode.")
    return _runs(dataset, models, indexes, modes, group_by, device, batch_size, show_progress_bar, announce, search_options)


def _runs(
    dataset: BeirDataset,
    models: Sequence[tuple[str, ModelLike]] | None,
    indexes: Sequence[str | Path],
    modes: Sequence[str] | None,
    group_by: str | None,
    device: str | None,
    batch_size: int,
    show_progress_bar: bool | None,
    announce: Callable[[str], None] | None,
    search_options: Mapping[str, Any] | None = None,
) -> Iterator[RetrievalRun]:
    through_index = bool(indexes or modes or group_by)
    chosen_modes: list[str | None] = list(modes) if modes else [None]
    if indexes:
        for path in indexes:
            for result in evaluate_retrieval_modes(
                None, dataset, chosen_modes, index=path, group_by=group_by, device=device, search_options=search_options
            ):
                yield RetrievalRun(str(path), result, through_index=True)
        return
    for name, model in models or [("bundled", None)]:
        if through_index:
            if announce is not None:
                announce(f"indexing {len(dataset.corpus):,} documents with {name} in a temporary folder ...")
            results = evaluate_retrieval_modes(
                model, dataset, chosen_modes, group_by=group_by, device=device, search_options=search_options
            )
        else:
            results = [
                evaluate_retrieval(model, dataset, batch_size=batch_size, device=device, show_progress_bar=show_progress_bar)
            ]
        for result in results:
            yield RetrievalRun(name, result, through_index=False)
