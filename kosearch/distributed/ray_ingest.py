"""Ingest on Ray Data: read and split on CPU tasks, encode in an actor pool, commit on the driver.

The data's path::

    driver: discover(root) -> one row per file (its FoundFile, and the hash the index holds for it)
      -> ray.data.from_items
      -> map_batches(read_files)            CPU tasks: read, hash, skip unchanged, split, Kiwi tokens
      -> map_batches(EncodeWorker)          actor pool: one model per actor, on its GPU if it has one
      -> iter_batches (in order)            back on the driver, as EncodedDocument items
    driver: kosearch.ingest.ingest_folder   the one writer: rows, vectors, tokens, checkpoints

On a CPU-only cluster the reading tasks and the encoding actors ask for the same resources, and
Ray Data's optimiser fuses the two stages into the actors (each actor reads, splits and encodes its
own blocks); with GPU actors they stay apart, so reading on CPUs overlaps encoding on GPUs.

Nothing is written by a worker. Each document comes back with its vectors (and lexical tokens) and goes
through the same loop, the same store calls and the same checkpoints as a single-process run, so the
index format, the update rules (unchanged files skipped, changed ones replaced, vanished ones pruned)
and the crash protocol (``kosearch.store.index_store``) are the ones already tested there. A killed
driver loses what came back since its last checkpoint; the next run skips the files committed before it.

Order is preserved (``DataContext.execution_options.preserve_order``): documents arrive in the sorted
path order a single-process run uses, so both give the same ids, rows and postings. Files must be
readable at the same path on every node (a shared filesystem); object stores are not read.

Workers must import the same kosearch (``pip install "kosearch[ray]"`` on every node, or a Ray
``runtime_env``). Each actor checks that its encoder's fingerprint is the index's before encoding.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kosearch.distributed.options import MISSING_RAY, RayOptions, import_ray
from kosearch.documents.types import Document, SkippedFile
from kosearch.errors import KosearchError
from kosearch.ingest import DocumentSource, EncodedDocument, SourceRequest

class DocumentEncoder(Protocol):
    """What an encoding actor needs: ``kosearch.encoders.Encoder`` or a stand-in with the same method."""

    fingerprint: str

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


EncoderFactory = Callable[[str], DocumentEncoder]
"""Makes an actor's encoder for a device (``"cuda"`` or ``"cpu"``); must pickle (it travels to the actors)."""


@dataclass(frozen=True)
class EncoderSpec:
    """How to rebuild the driver's encoder inside an actor: by name, so each node resolves its own files.

    The bundled model is named, not given by its converted folder (which lives in the driver's cache);
    ``fingerprint`` is what the actor's encoder must have, or it refuses to encode.
    """

    model: str | None
    encoder_backend: str
    precision: str | None
    fingerprint: str

    @classmethod
    def of(cls, encoder: Any, precision: str | None = None) -> EncoderSpec:
        """The spec of ``encoder``; ``precision`` as the user asked for it (None: ``auto``, decided again by
        each actor's device, since the driver's CPU says nothing about the actors' GPUs)."""
        from kosearch.encoders import BUNDLED_MODEL

        name = encoder.name
        return cls(
            model=None if name == BUNDLED_MODEL else name,
            encoder_backend=getattr(encoder, "encoder_backend", "torch"),
            precision=precision,
            fingerprint=encoder.fingerprint,
        )

    def __call__(self, device: str) -> DocumentEncoder:
        from kosearch.encoders import Encoder

        return Encoder(self.model, device=device, encoder_backend=self.encoder_backend, precision=self.precision)


def ray_documents(
    options: RayOptions | None = None, encoder_factory: EncoderFactory | None = None, fingerprint: str | None = None
) -> DocumentSource:
    """A :data:`kosearch.ingest.DocumentSource` that reads, splits and encodes on a Ray cluster.

    ``encoder_factory`` builds each actor's encoder (usually an :class:`EncoderSpec`); ``fingerprint`` is
    the index's, checked in every actor. Raises :class:`KosearchError` at once if Ray is not installed.
    """
    import_ray()
    options = options or RayOptions()
    if encoder_factory is None:
        raise KosearchError("ray_documents needs an encoder factory (EncoderSpec.of(encoder))")

    def source(request: SourceRequest) -> Iterator[Document | SkippedFile | EncodedDocument]:
        yield from _run(request, options, encoder_factory, fingerprint)

    return source


@dataclass(frozen=True)
class WorkerPlan:
    """How many encoding actors, and what each asks Ray for."""

    workers: int
    gpus: float
    cpus: float


class RayTasksFailed(RuntimeError):
    """Some files' blocks failed on the cluster; raised after everything else was handed over."""


def plan_workers(options: RayOptions, resources: Mapping[str, float]) -> WorkerPlan:
    """The actor pool for a cluster with ``resources`` (``ray.cluster_resources()``); pure, so tested with
    made-up GPU clusters on a machine without one."""
    gpus_in_cluster = int(resources.get("GPU", 0))
    cpus_in_cluster = int(resources.get("CPU", 1))
    gpus = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if gpus_in_cluster else 0.0)
    if options.encode_workers is not None:
        workers = options.encode_workers
    elif gpus > 0:
        workers = max(1, int(gpus_in_cluster / gpus))
    else:
        workers = max(1, cpus_in_cluster // 2)
    if gpus > 0 and workers * gpus > gpus_in_cluster:
        raise KosearchError(
            f"{workers} Ray encoding workers with {gpus:g} GPU each need {workers * gpus:g} GPUs, but the cluster "
            f"has {gpus_in_cluster}; ask for fewer workers (--ray-workers)."
        )
    return WorkerPlan(workers=workers, gpus=gpus, cpus=options.cpus_per_worker)


def read_files(
    batch: dict[str, np.ndarray],
    unit: str,
    text_fields: Sequence[str] | None,
    metadata_fields: Sequence[str] | None,
    lexical: dict | None,
) -> dict[str, list[bytes]]:
    """A reading task: each row's file read, hashed and (unless unchanged) split and tokenised.

    One bad file is a SkippedFile, as in a single-process run (``read_found_file`` catches per file).
    """
    from kosearch.documents import read_found_file

    out: list[bytes] = []
    for found_bytes, committed in zip(batch["found"], batch["committed"]):
        found = pickle.loads(found_bytes)
        if isinstance(found, SkippedFile):
            out.append(pickle.dumps((found, None)))
            continue
        item = read_found_file(
            found, text_fields=text_fields, mode=unit, metadata_fields=metadata_fields,
            is_unchanged=lambda _relpath, sha256, committed=committed: bool(committed) and sha256 == committed,
        )
        tokens = None
        if lexical is not None and isinstance(item, Document) and not item.unchanged:
            analysed = _analyzer(lexical).analyze_batch(s.text for s in item.sentences)
            tokens = [" ".join(t) for t in analysed]
        out.append(pickle.dumps((item, tokens)))
    return {"item": out}


_ANALYZERS: dict[str, Any] = {}


def _analyzer(lexical: dict):
    """One Kiwi analyzer per worker process and option set: building Kiwi costs about a second."""
    import json

    from kosearch.search.morphemes import LexicalOptions, MorphemeAnalyzer

    key = json.dumps(lexical, sort_keys=True)
    if key not in _ANALYZERS:
        _ANALYZERS[key] = MorphemeAnalyzer(LexicalOptions.from_dict(lexical))
    return _ANALYZERS[key]


class EncodeWorker:
    """An encoding actor: one model, loaded once, on the actor's GPU when Ray gave it one."""

    def __init__(self, encoder_factory: EncoderFactory, fingerprint: str | None) -> None:
        import ray

        self.device = "cuda" if ray.get_gpu_ids() else "cpu"
        self.encoder = encoder_factory(self.device)
        if fingerprint is not None and self.encoder.fingerprint != fingerprint:
            raise KosearchError(
                f"a Ray worker's encoder has fingerprint {self.encoder.fingerprint}, but the index's is {fingerprint}: "
                "install the same model (and kosearch) on every node"
            )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        items = [pickle.loads(b) for b in batch["item"]]
        texts = [s.text for item, _ in items if _needs_vectors(item) for s in item.sentences]
        # One call for the whole batch: sentence-transformers sorts these texts by length before cutting
        # them into model batches (and restores the order), so padding is small.
        vectors = self.encoder.encode_documents(texts) if texts else None
        out: list[bytes] = []
        start = 0
        for item, tokens in items:
            if _needs_vectors(item):
                stop = start + len(item.sentences)
                out.append(pickle.dumps((item, tokens, np.ascontiguousarray(vectors[start:stop], dtype=np.float32))))
                start = stop
            else:
                out.append(pickle.dumps((item, None, None)))
        return {"item": out}


def _needs_vectors(item: Document | SkippedFile) -> bool:
    return isinstance(item, Document) and not item.unchanged and bool(item.sentences)


def _run(
    request: SourceRequest, options: RayOptions, encoder_factory: EncoderFactory, fingerprint: str | None
) -> Iterator[Document | SkippedFile | EncodedDocument]:
    from kosearch.documents import discover

    ray = import_ray()
    started_here = _connect(ray, options.address)
    try:
        rows = [
            {
                "found": pickle.dumps(found),
                "committed": "" if isinstance(found, SkippedFile) else (request.committed_sha256(found.relpath) or ""),
            }
            for found in discover(request.root)
        ]
        if not rows:
            return
        plan = plan_workers(options, ray.cluster_resources())
        dataset = _dataset(ray, rows, request, options, plan, encoder_factory, fingerprint)
        returned = 0
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for data in batch["item"]:
                    returned += 1
                    yield _decoded(data)
        except Exception as error:  # noqa: BLE001 - a deliberate kosearch error from a worker stays one
            cause = _kosearch_cause(error)
            if cause is not None:
                raise cause from None
            raise
        if returned < len(rows):
            # Ray Data dropped the blocks a task failed on (max_errored_blocks); the loop must not
            # prune their files, so the run ends as one that stopped early (see kosearch.ingest).
            raise RayTasksFailed(
                f"{len(rows) - returned} of {len(rows)} files did not come back because a Ray task failed on "
                "them (its error is in the log above)"
            )
    finally:
        if started_here:
            ray.shutdown()


def _dataset(ray, rows, request, options, plan, encoder_factory, fingerprint):
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # same document order, hence ids, as one process
    context.enable_progress_bars = False  # the caller shows its own progress (files, sentences)
    # A task that fails on its block (a file that crashes the encoder, a worker lost with its node) costs
    # that block, not the run: what came back is committed, and the missing files are reported.
    context.max_errored_blocks = -1
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    blocks = max(1, math.ceil(len(rows) / options.files_per_task))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        read_files,
        batch_size=options.files_per_task,
        batch_format="numpy",
        num_cpus=options.read_cpus,
        fn_kwargs={
            "unit": request.unit,
            "text_fields": list(request.text_fields) if request.text_fields is not None else None,
            "metadata_fields": list(request.metadata_fields) if request.metadata_fields is not None else None,
            "lexical": request.lexical,
        },
    )
    return dataset.map_batches(
        EncodeWorker,
        batch_size=options.documents_per_batch,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.workers),
        num_gpus=plan.gpus,
        num_cpus=plan.cpus,
        fn_constructor_kwargs={"encoder_factory": encoder_factory, "fingerprint": fingerprint},
    )


def _decoded(data: bytes) -> Document | SkippedFile | EncodedDocument:
    item, tokens, *rest = pickle.loads(data)
    vectors = rest[0] if rest else None
    if vectors is None:
        return item
    return EncodedDocument(item, vectors, tokens)


def _connect(ray, address: str) -> bool:
    """Join or start a cluster; True when this call started the connection (so the run ends it)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == "auto" else address, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise KosearchError(f"cannot reach the Ray cluster at {address!r}: {str(error).splitlines()[0]}") from None
    return True


_RAISED_IN_WORKER = re.compile(r"kosearch\.errors\.(\w+): ([^\n]+)")


def _kosearch_cause(error: BaseException) -> KosearchError | None:
    """The KosearchError a worker raised, out of the Ray exceptions wrapped around it.

    A task's error travels as the exception itself (``RayTaskError.cause``); an actor that fails in
    ``__init__`` (another model on a node) arrives as an ``ActorDiedError`` that keeps only the text,
    so the kosearch error is read back from its last ``kosearch.errors.X: message`` line.
    """
    import kosearch.errors

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "cause", None)  # RayTaskError: the worker's own exception
        if isinstance(inner, BaseException):
            current = inner
            continue
        if isinstance(current, KosearchError):
            return current
        found = _RAISED_IN_WORKER.findall(str(current))
        if found:
            name, message = found[-1]
            kind = getattr(kosearch.errors, name, KosearchError)
            return (kind if isinstance(kind, type) and issubclass(kind, KosearchError) else KosearchError)(message)
        current = current.__cause__ or current.__context__
    return None


__all__ = ["EncoderSpec", "EncodeWorker", "MISSING_RAY", "RayOptions", "WorkerPlan", "plan_workers", "ray_documents"]
