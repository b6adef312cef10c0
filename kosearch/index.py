"""``kosearch.Index``: the one object that the CLI, the Python API and any service go through.

An index is a folder (see ``kosearch.store.index_store``) whose manifest records the encoder that
made its vectors. Opening an index never needs that encoder until a query has to be encoded, so
``info`` and ``paraphrases`` are instant; but an encoder that is named or loaded is always checked
against the manifest's fingerprint, because vectors from two different models are not comparable
and mixing them would silently return nonsense.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kosearch.errors import EncoderMismatchError
from kosearch.ingest import IngestOptions, ProgressCallback, ingest_folder
from kosearch.paraphrases import mine_paraphrases
from kosearch.results import Hit, IndexInfo, IngestReport, Pair
from kosearch.search.hybrid import SearchRequest
from kosearch.search.hybrid import search as hybrid_search
from kosearch.search.morphemes import LexicalOptions
from kosearch.store import DEFAULT_FACTORY, IndexStore
from kosearch.textclean import clean_text

if TYPE_CHECKING:
    from kosearch.encoders import Encoder


class Index:
    """A searchable index of sentences from one or more document folders.

    >>> import kosearch
    >>> idx = kosearch.Index.open("indexes/sample")
    >>> for hit in idx.search("수치 해석 프로그램", k=5):
    ...     print(hit.score, hit.text, hit.path, hit.line)
    >>> pairs = idx.paraphrases(top=10)
    """

    def __init__(self, store: IndexStore, encoder: Encoder | None = None, device: str | None = None) -> None:
        self._store = store
        self._encoder = encoder
        self._device = device

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        model: str | Encoder | None = None,
        *,
        device: str | None = None,
        faiss_factory: str = DEFAULT_FACTORY,
        backend: str | None = None,
    ) -> Index:
        """Create an empty index at ``path`` for ``model`` (default: the bundled encoder)."""
        encoder = _as_encoder(model, device)
        store = IndexStore.create(
            Path(path), new_index_manifest(encoder), factory=faiss_factory, device=encoder.device, backend=backend
        )
        return cls(store, encoder, encoder.device)

    @classmethod
    def open(
        cls,
        path: str | Path,
        model: str | Encoder | None = None,
        *,
        device: str | None = None,
        backend: str | None = None,
        writable: bool = False,
    ) -> Index:
        """Open an existing index. ``model``, if given, must be the encoder it was built with."""
        from kosearch.encoders import resolve_device

        resolved_device = resolve_device(device)
        store = IndexStore.open(Path(path), device=resolved_device, backend=backend, writable=writable)
        index = cls(store, None, resolved_device)
        if model is not None:
            try:
                index._set_encoder(_as_encoder(model, device))
            except BaseException:
                store.close()
                raise
        return index

    @classmethod
    def open_or_create(
        cls,
        path: str | Path,
        model: str | Encoder | None = None,
        *,
        device: str | None = None,
        faiss_factory: str = DEFAULT_FACTORY,
        backend: str | None = None,
    ) -> Index:
        """Open ``path`` for writing, creating it first (or finishing a creation that was killed).

        The choice is made under the index's write lock, so a second process racing on a new
        folder is told that another process is writing instead of finding a half-made index.
        """
        from kosearch.encoders import resolve_device

        made: list[Encoder] = []

        def make_manifest() -> dict:
            made.append(_as_encoder(model, device))
            return new_index_manifest(made[0])

        given = model is not None and not isinstance(model, (str, Path))
        resolved_device = model.device if given else resolve_device(device)  # type: ignore[union-attr]
        store = IndexStore.open_or_create(
            Path(path), make_manifest, factory=faiss_factory, device=resolved_device, backend=backend
        )
        index = cls(store, made[0] if made else None, resolved_device)
        if model is not None and not made:
            try:
                index._set_encoder(_as_encoder(model, device))
            except BaseException:
                store.close()
                raise
        return index

    def refresh(self) -> bool:
        """Let a long-lived reader see what writers committed since it opened; True if anything was.

        An index opened for reading answers from the snapshot it opened (see
        ``kosearch.store.index_store``); this moves it to the newest one.
        """
        return self._store.refresh()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the encoder ----------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The encoder of this index, loaded on first use and checked against the manifest."""
        if self._encoder is None:
            self._set_encoder(_as_encoder(self._store.manifest["model"], self._device))
        assert self._encoder is not None
        return self._encoder

    def _set_encoder(self, encoder: Encoder) -> None:
        manifest = self._store.manifest
        if encoder.fingerprint != manifest["fingerprint"] or encoder.dimension != manifest["dimension"]:
            raise EncoderMismatchError(
                f"index {self._store.folder} was built with encoder '{manifest['model']}' "
                f"(fingerprint {manifest['fingerprint']}, dimension {manifest['dimension']}), but the "
                f"encoder offered is '{encoder.name}' (fingerprint {encoder.fingerprint}, dimension "
                f"{encoder.dimension}). Open it with --model '{manifest['model']}' (or no --model), "
                f"or build a new index for the other encoder."
            )
        self._encoder = encoder

    # -- writing --------------------------------------------------------------------------------

    def add_folder(
        self,
        root: str | Path,
        *,
        text_fields: Sequence[str] | None = None,
        unit: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        prune: bool = True,
        checkpoint_sentences: int = 100_000,
        progress: ProgressCallback | None = None,
        mode: str | None = None,
        lexical: bool | None = None,
    ) -> IngestReport:
        """Index (or update) the documents under ``root``; see ``kosearch.ingest``.

        ``unit`` is what a hit is, ``"sentence"`` or ``"passage"``: a new index takes the default
        (``kosearch.ingest.DEFAULT_UNIT``), an existing one keeps its own (``mode`` is its old name).
        ``metadata_fields`` names the CSV/TSV/JSONL columns kept as typed metadata (default: every
        column not indexed as text). ``lexical`` (None: ``IngestOptions.lexical``): see there.
        """
        options = IngestOptions(
            text_fields=text_fields, mode=unit or mode, metadata_fields=metadata_fields, prune=prune,
            checkpoint_sentences=checkpoint_sentences, **({} if lexical is None else {"lexical": lexical}),
        )
        return ingest_folder(self._store, self.encoder, Path(root), options, progress)

    # -- reading --------------------------------------------------------------------------------

    def search(self, query: str, k: int = 10, context: int = 0, **options: Any) -> list[Hit]:
        """The ``k`` units that best match ``query``, best first.

        ``options`` are the fields of :class:`kosearch.search.hybrid.SearchRequest` (``mode``,
        ``where``, ``group_by``, ``fusion``, ``lexical_weight``), declared there once for both methods.
        """
        return self.search_batch([query], k, context, **options)[0]

    def search_batch(self, queries: Sequence[str], k: int = 10, context: int = 0, **options: Any) -> list[list[Hit]]:
        """Search many queries in one encoding pass; ``options`` as in :meth:`search`.

        Queries are cleaned like document text (lone surrogates, NULs -> U+FFFD), which tokenizers
        would otherwise refuse with a ``TypeError``.
        """
        if isinstance(queries, str):
            raise TypeError("search_batch takes a list of queries; use search() for one")
        request = SearchRequest(k=k, context=context, **options)
        return hybrid_search(
            self._store, [clean_text(query) for query in queries], self.encoder.encode_queries, request
        )

    def paraphrases(
        self, top: int | None = 100, min_score: float | None = None, neighbours: int = 10
    ) -> list[Pair]:
        """The most similar pairs of distinct sentences in the index, best first."""
        return mine_paraphrases(self._store, top=top, min_score=min_score, neighbours=neighbours)

    def info(self) -> IndexInfo:
        manifest = self._store.manifest
        documents, sentences = self._store.metadata.counts()
        return IndexInfo(
            path=str(self._store.folder),
            model=manifest["model"],
            fingerprint=manifest["fingerprint"],
            dimension=int(manifest["dimension"]),
            prompts=manifest.get("prompts") or {},
            vector_backend=self._store.vectors.backend,
            faiss_factory=manifest.get("faiss_factory", DEFAULT_FACTORY),
            documents=documents,
            sentences=sentences,
            size_bytes=self._store.size_bytes(),
            kosearch_version=manifest.get("kosearch_version", ""),
            created=manifest.get("created", ""),
            updated=manifest.get("updated", ""),
            roots=self._store.metadata.roots(),
            skipped=self._store.metadata.skipped(),
            # An index made before units were recorded holds sentences (see kosearch.ingest).
            unit=manifest.get("unit") or ("sentence" if sentences else None),
            lexical=manifest.get("lexical"),
        )

    def __len__(self) -> int:
        return self._store.vectors.count()

    @property
    def path(self) -> Path:
        return self._store.folder

    @property
    def store(self) -> IndexStore:
        """The underlying store, for tools (benchmarks, evaluation) that need raw vectors."""
        return self._store


def encoder_manifest(encoder: Encoder) -> dict:
    """What an index records about its encoder, so it can demand the same one later."""
    return {
        "model": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dimension": encoder.dimension,
        "prompts": encoder.prompts,
    }


def new_index_manifest(encoder: Encoder) -> dict:
    """The manifest of a new index: its encoder, and the options its lexical index is analysed with."""
    return {**encoder_manifest(encoder), "lexical": LexicalOptions().to_dict()}


def _as_encoder(model: str | Path | Encoder | None, device: str | None) -> Encoder:
    """A model name loads an ``Encoder``; anything else is taken as an encoder already made."""
    if model is None or isinstance(model, (str, Path)):
        from kosearch.encoders import Encoder

        return Encoder(None if model is None else str(model), device=device)
    return model
