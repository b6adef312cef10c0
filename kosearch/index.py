"""``kosearch.Index``: the one object that the CLI, the Python API and any service go through.

An index is a folder (see ``kosearch.store.index_store``) whose manifest records the encoder that
made its vectors. Opening an index never needs that encoder until a query has to be encoded, so
``info`` and ``paraphrases`` are instant; but an encoder that is named or loaded is always checked
against the manifest's fingerprint, because vectors from two different models are not comparable
and mixing them would silently return nonsense.

The encoder backend (``torch``, ``onnx``, ``onnx-int8``; see ``kosearch.encoders.backends``) is recorded
only where it changes the vectors: ``onnx`` reproduces torch's to float32 rounding, so such an index
records nothing, while one filled by ``onnx-int8`` records ``"encoder_backend": "onnx-int8"``. Opening
an index without naming a backend uses the recorded one (so an int8 index is queried with int8).
Adding documents with vectors of the other family is refused: one index would then rank two kinds of
vectors against each other, with scores shifted by the quantisation error, and nothing could undo it
but a rebuild. A *query* of the other family is allowed with a warning: it touches no stored vector,
and measured on KorSTS it costs about as much as int8 on both sides (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kosearch.distributed.options import RayOptions
from kosearch.errors import EncoderMismatchError, KosearchError
from kosearch.ingest import IngestOptions, ProgressCallback, ingest_folder
from kosearch import records
from kosearch.paraphrases import mine_paraphrases
from kosearch.results import CheckReport, CompactionReport, Hit, IndexInfo, IngestReport, Pair, RemovalReport
from kosearch.search.dense_floor import dense_std_floor
from kosearch.search.filters import BUILTIN_FIELDS, WhereSpec
from kosearch.search.hybrid import FUSIONS, GROUPS, MODES, SearchRequest  # the options of Index.search, for front ends
from kosearch.search.hybrid import search as hybrid_search
from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer
from kosearch.store import DEFAULT_FACTORY, IndexStore
from kosearch.store.check import check_folder, repair_folder
from kosearch.store.index_store import METADATA_FILE
from kosearch.store.vector_backend import parse_vector_store
from kosearch.textclean import clean_text

if TYPE_CHECKING:
    from kosearch.encoders import Encoder

logger = logging.getLogger(__name__)

FACADE_VOCABULARY = (
    "ENCODER_BACKEND_HELP", "ENCODER_PROCESS_HELP", "FUSIONS", "GROUPS", "MODES", "PRECISIONS", "SearchRequest"
)
"""Names re-exported here for front ends: the CLI and the service import only this facade (STYLE.md),
yet declare their options from the same source as the library (search options, encoder backends)."""


class Index:
    """A searchable index of sentences from one or more document folders.

    >>> import kosearch
    >>> idx = kosearch.Index.open("indexes/sample")
    >>> for hit in idx.search("수치 해석 프로그램", k=5):
    ...     print(hit.score, hit.text, hit.path, hit.line)
    >>> pairs = idx.paraphrases(top=10)

    Texts from a program go in as records, with ids and metadata (see ``kosearch.records``):

    >>> with kosearch.Index.open_or_create("indexes/notes") as idx:
    ...     ids = idx.add_texts(["첫 문장", "두 번째 문장"], metadata=[{"user": 3}, {"user": 4}], ids=["n1", "n2"])
    ...     idx.upsert_texts(["고친 문장"], ids=["n1"])
    ...     idx.delete(ids=["n2"])
    """

    def __init__(
        self,
        store: IndexStore,
        encoder: Encoder | None = None,
        device: str | None = None,
        encoder_backend: str | None = None,
        precision: str | None = None,
        encoder_process: str | None = None,
    ) -> None:
        self._store = store
        self._encoder = encoder
        self._device = device
        self._encoder_backend = encoder_backend
        self._precision = precision
        self._encoder_process = encoder_process
        self._warned_family = False

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
        encoder_backend: str | None = None,
        vector_store: str | None = None,
        precision: str | None = None,
        encoder_process: str | None = None,
    ) -> Index:
        """Create an empty index at ``path`` for ``model`` (default: the bundled encoder).

        ``backend`` is where vectors are searched (faiss, torch); ``encoder_backend`` what computes them
        (torch, onnx, onnx-int8; ignored when ``model`` is an Encoder already made); ``vector_store``
        where they live (``faiss``, ``qdrant:local``, ``qdrant://HOST:6333/COLLECTION``; recorded, so
        the index reopens with it); ``precision`` what the encoder computes in
        (``kosearch.encoders.precision``; the stored vectors are float32 either way); ``encoder_process``
        where the model runs, ``"in"`` this process (the default, and what ``"auto"`` means here: no folder
        is known yet) or ``"child"`` a child process that a large merge's release ends, so this process
        never imports torch (``kosearch.encoders.child_process``; ``kosearch index`` picks by folder size)."""
        config = parse_vector_store(vector_store)  # a malformed value fails before the encoder loads
        encoder = _as_encoder(model, device, encoder_backend, precision, encoder_process)
        try:
            store = IndexStore.create(
                Path(path), new_index_manifest(encoder), factory=faiss_factory, device=encoder.device,
                backend=backend, vector_store=config,
            )
        except BaseException:
            _end_child_encoder(encoder)
            raise
        backend_name = getattr(encoder, "encoder_backend", None)
        return cls(store, encoder, encoder.device, backend_name, precision, encoder_process)

    @classmethod
    def open(
        cls,
        path: str | Path,
        model: str | Encoder | None = None,
        *,
        device: str | None = None,
        backend: str | None = None,
        writable: bool = False,
        encoder_backend: str | None = None,
        vector_store: str | None = None,
        precision: str | None = None,
        encoder_process: str | None = None,
    ) -> Index:
        """Open an existing index. ``model``, if given, must be the encoder it was built with;
        ``encoder_backend`` defaults to the one the index records (torch when it records none);
        ``vector_store``, if given, must be the one it records; ``encoder_process`` as in :meth:`create`."""
        resolved_device = _store_device(device, encoder_backend, encoder_process)
        wanted = None if vector_store is None else parse_vector_store(vector_store)
        store = IndexStore.open(
            Path(path), device=resolved_device, backend=backend, writable=writable, vector_store=wanted
        )
        index = cls(store, None, device, encoder_backend, precision, encoder_process)
        if model is not None:
            try:
                index._set_encoder(index._make_encoder(model))
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
        encoder_backend: str | None = None,
        vector_store: str | None = None,
        precision: str | None = None,
        encoder_process: str | None = None,
    ) -> Index:
        """Open ``path`` for writing, creating it first (or finishing a creation that was killed).

        ``vector_store`` is where a new index keeps its vectors (see ``create``); an existing one must
        record the same, when it is given. ``encoder_process`` as in :meth:`create`.

        The choice is made under the index's write lock, so a second process racing on a new
        folder is told that another process is writing instead of finding a half-made index.
        """
        made: list[Encoder] = []

        def make_manifest() -> dict:
            made.append(_as_encoder(model, device, encoder_backend, precision, encoder_process))
            return new_index_manifest(made[0])

        given = model is not None and not isinstance(model, (str, Path))
        if given:
            resolved_device = model.device  # type: ignore[union-attr]
        else:
            resolved_device = _store_device(device, encoder_backend, encoder_process)
        wanted = None if vector_store is None else parse_vector_store(vector_store)
        try:
            store = IndexStore.open_or_create(
                Path(path), make_manifest, factory=faiss_factory, device=resolved_device, backend=backend,
                vector_store=wanted,
            )
        except BaseException:
            for encoder in made:
                _end_child_encoder(encoder)
            raise
        index = cls(store, made[0] if made else None, device, encoder_backend, precision, encoder_process)
        if model is not None and not made:
            try:
                index._set_encoder(index._make_encoder(model))
            except BaseException:
                store.close()
                raise
        return index

    @staticmethod
    def check(path: str | Path) -> CheckReport:
        """Verify every file and row of the index at ``path`` without changing it (``kosearch check``).

        Unlike :meth:`open`, a damaged index is not an error here: the report lists what is wrong,
        file by file, and what :meth:`repair` would do about it (see ``kosearch.store.check``).
        """
        return check_folder(Path(path))

    @staticmethod
    def repair(
        path: str | Path, model: str | Encoder | None = None, *, device: str | None = None
    ) -> CheckReport:
        """Rebuild what can be rebuilt from the index's rows (``kosearch check --repair``).

        Lost vectors are encoded again with the index's own encoder (``model`` must be that encoder
        when given; it is loaded only when vectors need encoding), lexical postings are analysed
        again with the options the index records. The report is the check made after the repair.
        """
        folder = Path(path)
        loaded: list[Encoder] = []

        def manifest() -> dict[str, Any]:
            with sqlite3.connect(folder / METADATA_FILE) as connection:
                return {key: json.loads(value) for key, value in connection.execute("select key, value from manifest")}

        def encode(texts: list[str]):
            if not loaded:
                recorded = manifest()
                encoder = _as_encoder(
                    model if model is not None else recorded["model"], device, recorded.get("encoder_backend")
                )
                _require_same_encoder(folder, recorded, encoder)
                loaded.append(encoder)
            return loaded[0].encode_documents(texts)

        analyzers: list[MorphemeAnalyzer] = []

        def analyze(texts: list[str]) -> list[str]:
            if not analyzers:
                analyzers.append(MorphemeAnalyzer(LexicalOptions.from_dict(manifest()["lexical"])))
            return [" ".join(tokens) for tokens in analyzers[0].analyze_batch(texts)]

        return repair_folder(folder, encode, analyze)

    def refresh(self) -> bool:
        """Move a reader to the newest committed generation now; True if there was a newer one.

        Never needed for correctness: an index opened for reading checks for a newer generation
        before each search on its own (see ``kosearch.store.index_store``, "Reading"). This only
        releases the old snapshot early, e.g. for a reader that will sit idle for a long time.
        """
        return self._store.refresh()

    def close(self) -> None:
        """Close the store; an encoder running in a child process (``encoder_process="child"``) ends too."""
        _end_child_encoder(self._encoder)
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
            self._set_encoder(self._make_encoder(self._store.manifest["model"]))
        assert self._encoder is not None
        return self._encoder

    @property
    def vector_family(self) -> str | None:
        """The encoder backend the stored vectors came from where it changes them (``"onnx-int8"``), else None."""
        return self._store.manifest.get("encoder_backend")

    def _make_encoder(self, model: str | Path | Encoder | None) -> Encoder:
        """An encoder for ``model`` with the backend asked for, else the one the index records."""
        return _as_encoder(
            model, self._device, self._encoder_backend or self.vector_family, self._precision, self._encoder_process
        )

    def _check_vector_family(self, encoder: Encoder, writing: bool) -> None:
        """Refuse to store vectors of another family; warn (once) when queries are of another family."""
        stored, offered = self.vector_family, _vector_family(encoder)
        if stored == offered:
            return
        describe = {None: "float32 (torch or onnx)"}
        offered_backend = getattr(encoder, "encoder_backend", "torch")
        if writing:
            raise EncoderMismatchError(
                f"index {self._store.folder} holds {describe.get(stored, stored)} vectors, but the encoder offered "
                f"makes {describe.get(offered, offered)} vectors (--encoder-backend {offered_backend}). "
                f"Mixing them in one index would rank two kinds of vectors against each other. Index with "
                f"--encoder-backend {stored or 'torch'} (or leave it out), or build a new index for "
                f"{offered_backend}."
            )
        if not self._warned_family:
            self._warned_family = True
            logger.warning(
                "warning: index %s holds %s vectors; queries are encoded with --encoder-backend %s, whose vectors "
                "differ slightly (scores shift a little; leave --encoder-backend out to match the index)",
                self._store.folder, describe.get(stored, stored), offered_backend,
            )

    def _set_encoder(self, encoder: Encoder) -> None:
        _require_same_encoder(self._store.folder, self._store.manifest, encoder)
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
        ray: str | RayOptions | None = None,
    ) -> IngestReport:
        """Index (or update) the documents under ``root``; see ``kosearch.ingest``.

        ``unit`` is what a hit is, ``"sentence"`` or ``"passage"``: a new index takes the default
        (``kosearch.ingest.DEFAULT_UNIT``), an existing one keeps its own (``mode`` is its old name).
        ``metadata_fields`` names the CSV/TSV/JSONL columns kept as typed metadata (default: every
        column not indexed as text). ``lexical`` (None: ``IngestOptions.lexical``): see there.

        ``ray`` reads, splits and encodes on a Ray cluster (``"auto"``, a cluster address, or
        :class:`kosearch.distributed.RayOptions`); this process still writes the index, through the same
        checkpoints (see ``kosearch.distributed.ray_ingest``). Needs ``pip install "kosearch[ray]"``.
        """
        options = IngestOptions(
            text_fields=text_fields, mode=unit or mode, metadata_fields=metadata_fields, prune=prune,
            checkpoint_sentences=checkpoint_sentences, **({} if lexical is None else {"lexical": lexical}),
        )
        self._check_vector_family(self.encoder, writing=True)
        source = None
        if ray is not None:
            from kosearch.distributed.ray_ingest import EncoderSpec, ray_documents

            ray_options = ray if isinstance(ray, RayOptions) else RayOptions(address=str(ray))
            source = ray_documents(
                ray_options, EncoderSpec.of(self.encoder, self._precision), self._store.manifest["fingerprint"]
            )
        return ingest_folder(self._store, self.encoder, Path(root), options, progress, source)

    def add_texts(
        self,
        texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add texts as records and return their ids (generated ``uuid4().hex`` where none is given).

        ``metadata`` is one dict (or None) per text; its keys become typed fields that ``where``
        filters read, as CSV/JSONL columns do (``where={"user": 3}``). An id the index already
        holds is an error (:class:`kosearch.RecordExistsError`); use :meth:`upsert_texts` to replace.
        One call is one commit (see ``kosearch.records``). A record's hits have ``path`` = its id.
        """
        return records.add_texts(self._store, self._encode_documents, texts, metadata, ids)

    def upsert_texts(
        self,
        texts: Sequence[str],
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str],
    ) -> list[str]:
        """Add or replace the records ``ids``: each becomes exactly the text and metadata given."""
        return records.add_texts(self._store, self._encode_documents, texts, metadata, ids, upsert=True)

    def delete(
        self,
        ids: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        where: WhereSpec = None,
    ) -> int:
        """Remove documents and return how many: records by ``ids``, files by ``paths`` (relative to
        the indexed folder, globs allowed), anything with a unit passing ``where`` (a search filter).
        Each argument given narrows the choice; unknown ids and paths remove nothing."""
        return records.delete(self._store, ids=ids, paths=paths, where=where).documents

    def remove(self, paths: Sequence[str]) -> RemovalReport:
        """Remove files by path or glob (``kosearch remove``), saying what was removed and what matched nothing.

        A removed file that is still in its folder comes back the next time that folder is indexed.
        """
        return records.delete(self._store, paths=paths)

    def compact(self) -> CompactionReport:
        """Merge all segments into one, drop deleted vectors, and build the ANN index the size calls for.

        The store does the work (``IndexStore.compact``) and swaps the manifest atomically; readers keep
        the generation they hold until their next search.
        """
        return self._store.compact()

    def _encode_documents(self, texts: list[str]):
        self._check_vector_family(self.encoder, writing=True)
        return self.encoder.encode_documents(texts)

    # -- reading --------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load now what the first query would wait for, in a program that will answer many (a server).

        That is the encoder's fastest query runtime (an ONNX backend's session: :meth:`Encoder.warm_up`),
        then the morphological analyser, the lexical postings and the vector segments, by answering one
        query. An empty index has nothing to warm.
        """
        if not len(self):
            return
        warm = getattr(self.encoder, "warm_up", None)  # an encoder object of the caller's may have none
        if warm is not None:
            warm()
        self.search("검색", k=1)

    def search(self, query: str, k: int = 10, context: int = 0, **options: Any) -> list[Hit]:
        """The ``k`` units that best match ``query``, best first.

        ``options`` are the fields of :class:`kosearch.search.hybrid.SearchRequest` (``mode``,
        ``where``, ``group_by``, ``fusion``, ``lexical_weight``, ``bm25_k1``, ``bm25_b``), declared there once
        for both methods.
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

        def encode_queries(texts: Sequence[str]):
            self._check_vector_family(self.encoder, writing=False)  # lexical-only searches never get here
            return self.encoder.encode_queries(texts)

        def fusion_floor():
            return dense_std_floor(self.encoder)  # the fixed floor scaled to this encoder's cosine spread

        return hybrid_search(self._store, [clean_text(query) for query in queries], encode_queries, request, fusion_floor)

    def paraphrases(
        self, top: int | None = 100, min_score: float | None = None, neighbours: int = 10
    ) -> list[Pair]:
        """The most similar pairs of distinct sentences in the index, best first."""
        return mine_paraphrases(self._store, top=top, min_score=min_score, neighbours=neighbours)

    def unit(self, unit_id: int, context: int = 0) -> dict[str, Any] | None:
        """One stored unit by id, with ``context`` neighbouring units on each side; None if absent.

        The shape is an ``IndexedSentence`` as a dict plus ``document_id``, ``context_before`` and
        ``context_after``: what a search page needs to show a hit's surroundings on demand.
        """
        row = self._store.units_by_id([int(unit_id)]).get(int(unit_id))
        if row is None:
            return None
        before, after = self._store.neighbours(row.sentence_id, context, context) if context else ([], [])
        return {
            **asdict(row),
            "document_id": self._store.unit_documents([row.sentence_id]).get(row.sentence_id),
            "context_before": before,
            "context_after": after,
        }

    def document(self, document_id: int, units: int = 1000) -> dict[str, Any] | None:
        """A document's row (path, format, size, ...) and its first ``units`` unit ids; None if absent."""
        found = self._store.document(int(document_id))
        if found is None:
            return None
        return {**found, "unit_ids": self._store.unit_ids_of_document(int(document_id), units)}

    def fields(self) -> dict[str, Any]:
        """What a filter may name: the built-in fields and the typed metadata fields seen in a sample."""
        return {"builtin": sorted(BUILTIN_FIELDS), "metadata": self._store.field_names()}

    def info(self) -> IndexInfo:
        with self._store.reading():
            return self._info()

    def _info(self) -> IndexInfo:
        store = self._store
        manifest = store.manifest
        documents, sentences = store.counts()
        segments = store.segment_entries()
        return IndexInfo(
            path=str(self._store.folder),
            model=manifest["model"],
            fingerprint=manifest["fingerprint"],
            dimension=int(manifest["dimension"]),
            prompts=manifest.get("prompts") or {},
            vector_backend=store.backend,
            vector_store=store.vector_store,
            faiss_factory=manifest.get("faiss_factory", DEFAULT_FACTORY),
            documents=documents,
            sentences=sentences,
            size_bytes=store.size_bytes(),
            kosearch_version=manifest.get("kosearch_version", ""),
            created=manifest.get("created", ""),
            updated=manifest.get("updated", ""),
            roots=store.roots(),
            skipped=store.skipped(),
            segments=len(segments),
            deleted_vectors=store.deleted_count(),
            segment_details=[entry.to_dict() for entry in segments],
            encoder_backend=manifest.get("encoder_backend"),
            # An index made before units were recorded holds sentences (see kosearch.ingest).
            unit=manifest.get("unit") or ("sentence" if sentences else None),
            lexical=manifest.get("lexical"),
        )

    def __len__(self) -> int:
        return self._store.count()

    @property
    def path(self) -> Path:
        return self._store.folder

    @property
    def store(self) -> IndexStore:
        """The underlying store, for tools (benchmarks, evaluation) that need raw vectors."""
        return self._store


def __getattr__(name: str) -> Any:
    """``ENCODER_BACKEND_HELP`` (what each ``encoder_backend`` value means), ``PRECISIONS`` (the
    encoder's compute precisions) and ``ENCODER_PROCESS_HELP`` (where the model runs), for front ends' option help.

    Front ends (CLI, service) import the facade only; this loads the encoders package when asked for,
    not at ``import kosearch``.
    """
    if name == "ENCODER_BACKEND_HELP":
        from kosearch.encoders.backends import ENCODER_BACKEND_HELP

        return ENCODER_BACKEND_HELP
    if name == "PRECISIONS":
        from kosearch.encoders.precision import PRECISIONS

        return PRECISIONS
    if name == "ENCODER_PROCESS_HELP":
        from kosearch.encoders.child_process import ENCODER_PROCESS_HELP

        return ENCODER_PROCESS_HELP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _require_same_encoder(folder: Path, manifest: Mapping[str, Any], encoder: Encoder) -> None:
    if encoder.fingerprint != manifest["fingerprint"] or encoder.dimension != manifest["dimension"]:
        raise EncoderMismatchError(
            f"index {folder} was built with encoder '{manifest['model']}' "
            f"(fingerprint {manifest['fingerprint']}, dimension {manifest['dimension']}), but the "
            f"encoder offered is '{encoder.name}' (fingerprint {encoder.fingerprint}, dimension "
            f"{encoder.dimension}). Open it with --model '{manifest['model']}' (or no --model), "
            f"or build a new index for the other encoder."
        )


def encoder_manifest(encoder: Encoder) -> dict:
    """What an index records about its encoder, so it can demand the same one later; the encoder backend
    only where it makes vectors of its own family (``onnx-int8``)."""
    manifest = {
        "model": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dimension": encoder.dimension,
        "prompts": encoder.prompts,
    }
    if _vector_family(encoder) is not None:
        manifest["encoder_backend"] = _vector_family(encoder)
    return manifest


def _vector_family(encoder: Encoder) -> str | None:
    """An encoder-like object without the attribute (a test or benchmark stand-in) makes float vectors."""
    return getattr(encoder, "vector_family", None)


def new_index_manifest(encoder: Encoder) -> dict:
    """The manifest of a new index: its encoder, and the options its lexical index is analysed with."""
    return {**encoder_manifest(encoder), "lexical": LexicalOptions().to_dict()}


def _as_encoder(
    model: str | Path | Encoder | None,
    device: str | None,
    encoder_backend: str | None = None,
    precision: str | None = None,
    encoder_process: str | None = None,
) -> Encoder:
    """A model name loads an ``Encoder`` (in a child process with ``encoder_process="child"``); anything
    else is taken as an encoder already made."""
    if model is None or isinstance(model, (str, Path)):
        options = dict(device=device, encoder_backend=encoder_backend, precision=precision)
        name = None if model is None else str(model)
        if encoder_process is not None:
            from kosearch.encoders.child_process import ChildProcessEncoder, encoder_process as lookup_process

            if lookup_process(encoder_process) == "child":
                return ChildProcessEncoder(name, **options)  # type: ignore[return-value]  # offers what Index uses
        from kosearch.encoders import Encoder

        return Encoder(name, **options)
    return model


def encoder_process_for(documents: str | Path, encoder_process: str | None = None) -> str:
    """Where the model should run to index ``documents``, ``"in"`` or ``"child"``: ``encoder_process``
    checked, and ``auto`` (the default) decided by the size of the files the run would read
    (``kosearch.encoders.child_process.AUTO_CHILD_BYTES``). For front ends that know the folder before
    they open the index (``kosearch index``); a missing folder counts as empty."""
    from kosearch.documents.discover import FoundFile, discover
    from kosearch.encoders.child_process import AUTO_CHILD_BYTES, decided_by_size
    from kosearch.encoders.child_process import encoder_process as lookup_process

    if not decided_by_size(encoder_process):
        return lookup_process(encoder_process)  # no walk
    total = 0
    try:
        for found in discover(documents):
            if isinstance(found, FoundFile):
                try:
                    total += found.path.stat().st_size
                except OSError:
                    continue  # the run itself reports the file
                if total >= AUTO_CHILD_BYTES:
                    break
    except KosearchError:
        pass  # no such folder: the run says so, in its own words
    return lookup_process(encoder_process, total)


def _end_child_encoder(encoder: object) -> None:
    """End ``encoder``'s child process if it has one; an in-process encoder is left to the garbage collector."""
    child_process = sys.modules.get("kosearch.encoders.child_process")  # not imported: no child was started
    if child_process is not None and isinstance(encoder, child_process.ChildProcessEncoder):
        encoder.release()


def _store_device(device: str | None, encoder_backend: str | None, encoder_process: str | None = None) -> str:
    """Where the vector store runs: the ONNX encoder backends compute on the CPU, so ``auto`` is the CPU there
    (and the index need not import torch to look for a GPU); with the encoder in a child process, a device that
    only torch can check is checked there (``kosearch.encoders.child_process.resolve_device_elsewhere``)."""
    from kosearch.encoders import resolve_device
    from kosearch.encoders.backends import encoder_backend as lookup

    in_child = False
    if encoder_process is not None:  # the default (in this process) imports nothing more
        from kosearch.encoders.child_process import encoder_process as lookup_process

        in_child = lookup_process(encoder_process) == "child"
    if lookup(encoder_backend).runtime == "onnxruntime" and (device or "auto").strip().lower() == "auto":
        return "cpu"
    if in_child:
        from kosearch.encoders.child_process import resolve_device_elsewhere

        return resolve_device_elsewhere(device)
    return resolve_device(device)
