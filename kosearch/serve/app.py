"""The FastAPI application over one index: search, paraphrases, units, documents, info, writes.

Concurrency. Every call into the index runs on one worker thread that owns the ``Index``: SQLite
connections belong to the thread that opened them, and one owner also serialises writes, so the
event loop only parses, validates and answers. Before each read the worker calls
``Index.refresh()``, which is a manifest read when nothing changed: a commit made by ``kosearch
index`` in another process is therefore seen by the next request, without a restart.

Safety. The service is read-only unless built with ``allow_writes`` and a token (sent as
``Authorization: Bearer TOKEN``, compared in constant time). Every request dimension is bounded by
:class:`~kosearch.serve.limits.ServiceLimits`; errors a client can cause are 4xx with ``{"error": ...}``
(400 for a kosearch error such as a bad filter, 401/403 for writes, 404 for an unknown id, 413 for a
body, 422 for a field), and text from documents only ever reaches the page as JSON.
"""


import asyncio
import functools
import hmac
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from kosearch._version import __version__
from kosearch.errors import IndexCorruptError, KosearchError
from kosearch.index import Index
from kosearch.serve.body_limit import BodyLimitMiddleware
from kosearch.serve.limits import ServiceLimits
from kosearch.serve.models import search_models, write_models

STATIC = Path(__file__).with_name("static")
PARAPHRASE_CACHE = 8
"""Paraphrase pages kept per generation: mining reads every vector, so repeated pages are served from memory."""

log = logging.getLogger("kosearch.serve")


class IndexWorker:
    """Owns the ``Index`` on one thread; ``run`` schedules a call on it from the event loop."""

    def __init__(self, open_index: Callable[[], Index]) -> None:
        self._open_index = open_index
        self._paraphrases: OrderedDict[tuple, list[dict[str, Any]]] = OrderedDict()
        self._executor: ThreadPoolExecutor | None = None
        self.start()

    def start(self) -> None:
        """Open the index on a fresh worker thread (again after ``close``: a test client or a server
        may run the application's lifespan more than once)."""
        if self._executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kosearch-index")
            try:
                self.index: Index = executor.submit(self._open_index).result()
            except BaseException:
                executor.shutdown(wait=True)
                raise
            self._executor = executor

    async def run(self, call: Callable[[Index], Any], *, refresh: bool = True) -> Any:
        def job() -> Any:
            if refresh:
                self.index.refresh()
            return call(self.index)

        if self._executor is None:
            self.start()
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def warm_up(self) -> None:
        """Load what the first query needs (encoder, analyser) now; an index that cannot answer yet
        (empty, or its encoder unavailable) is left to answer its first request with a clear error."""

        def job() -> None:
            try:
                self.index.warm_up()
            except KosearchError:
                pass

        assert self._executor is not None
        self._executor.submit(job).result()

    def paraphrases(self, index: Index, top: int, min_score: float | None, neighbours: int) -> list[dict[str, Any]]:
        key = (index.info().updated, len(index), top, min_score, neighbours)
        if key not in self._paraphrases:
            pairs = index.paraphrases(top=top, min_score=min_score, neighbours=neighbours)
            self._paraphrases[key] = [pair.to_dict() for pair in pairs]
            while len(self._paraphrases) > PARAPHRASE_CACHE:
                self._paraphrases.popitem(last=False)
        return self._paraphrases[key]

    def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.submit(self.index.close).result()
            executor.shutdown(wait=True)


def create_app(
    index_path: str | Path,
    *,
    model: Any = None,
    device: str | None = None,
    encoder_backend: str | None = None,
    allow_writes: bool = False,
    token: str | None = None,
    limits: ServiceLimits = ServiceLimits(),
    warm_up: bool = True,
) -> FastAPI:
    """An application serving the index at ``index_path`` (opened now, so a bad path fails here).

    ``model`` is a model name or an encoder object and ``encoder_backend`` the backend that encodes
    queries (both as for ``Index.open``; ``onnx`` answers a query about 3x faster than the default on
    a CPU, with torch's vectors to float32 rounding). ``warm_up`` runs one
    query before the first request, so the encoder and the morphological analyser (seconds to
    load) are ready when the first user arrives.
    """
    if allow_writes and not token:
        raise KosearchError("writes need a token: pass --token TOKEN (or set KOSEARCH_TOKEN) with --allow-writes")
    index_path = Path(index_path)
    worker = IndexWorker(lambda: Index.open(
            index_path, model, device=device, encoder_backend=encoder_backend, writable=allow_writes
        ))
    if warm_up:
        worker.warm_up()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        worker.start()
        yield
        worker.close()

    app = FastAPI(
        title="kosearch",
        version=__version__,
        summary="Korean semantic and hybrid search over one kosearch index.",
        lifespan=lifespan,
    )
    app.state.worker = worker
    app.state.limits = limits
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    _add_error_handlers(app)
    SearchQuery, SearchBatch = search_models(limits)
    TextsBody, DeleteBody = write_models(limits)

    def require_token(authorization: Annotated[Optional[str], Header()] = None) -> None:
        if not allow_writes:
            raise HTTPException(403, "this service is read-only; start it with --allow-writes --token TOKEN to accept writes")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), str(token).encode()):
            raise HTTPException(401, "writes need the service's token as 'Authorization: Bearer TOKEN'")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/health", summary="Liveness, and what the service currently answers from")
    async def health() -> dict[str, Any]:
        return await worker.run(lambda idx: {"status": "ok", "sentences": len(idx), "updated": idx.info().updated})

    @app.get("/info", summary="The index's summary (the same object as `kosearch info --json`)")
    async def info() -> dict[str, Any]:
        return await worker.run(lambda idx: idx.info().to_dict())

    @app.get("/fields", summary="Filterable fields: the built-in ones and the index's typed metadata fields")
    async def fields() -> dict[str, Any]:
        return await worker.run(lambda idx: idx.fields())

    @app.get("/search", summary="One query (the same object as one line of `kosearch query --json`)")
    async def search_one(params: Annotated[SearchQuery, Query()]) -> dict[str, Any]:  # type: ignore[valid-type]
        options = params.model_dump(exclude={"q"})
        hits = await worker.run(lambda idx: idx.search(params.q, **options))
        return {"query": params.q, "hits": [hit.to_dict() for hit in hits]}

    @app.post("/search", summary="Many queries in one encoding pass: a list of `kosearch query --json` objects")
    async def search_many(body: SearchBatch) -> list[dict[str, Any]]:  # type: ignore[valid-type]
        options = body.model_dump(exclude={"queries"})
        results = await worker.run(lambda idx: idx.search_batch(body.queries, **options))
        return [{"query": q, "hits": [hit.to_dict() for hit in hits]} for q, hits in zip(body.queries, results)]

    @app.get("/paraphrases", summary="The most similar pairs (the same list as `kosearch paraphrases --json`)")
    async def paraphrases(
        top: Annotated[int, Query(ge=1, le=limits.max_pairs)] = 100,
        min_score: Annotated[Optional[float], Query(ge=-1.0, le=1.0)] = None,
        neighbours: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> list[dict[str, Any]]:
        return await worker.run(functools.partial(worker.paraphrases, top=top, min_score=min_score, neighbours=neighbours))

    @app.get("/units/{unit_id}", summary="One stored unit (sentence or passage) with its neighbours")
    async def unit(
        unit_id: Annotated[int, PathParameter(ge=0, le=2**63 - 1)], context: Annotated[int, Query(ge=0, le=limits.max_context)] = 1
    ) -> dict[str, Any]:
        found = await worker.run(lambda idx: idx.unit(unit_id, context=context))
        if found is None:
            raise HTTPException(404, f"no unit with id {unit_id} in this index")
        return found

    @app.get("/documents/{document_id}", summary="One document: its path, format and units")
    async def document(document_id: Annotated[int, PathParameter(ge=0, le=2**63 - 1)]) -> dict[str, Any]:
        found = await worker.run(lambda idx: idx.document(document_id))
        if found is None:
            raise HTTPException(404, f"no document with id {document_id} in this index")
        return found

    @app.post("/texts", summary="Add texts (needs --allow-writes and the token)", dependencies=[Depends(require_token)])
    async def add_texts(body: TextsBody) -> dict[str, Any]:  # type: ignore[valid-type]
        ids = await worker.run(lambda idx: idx.add_texts(body.texts, metadata=body.metadata, ids=body.ids))
        return {"ids": ids}

    @app.put("/texts", summary="Add or replace texts by id (needs --allow-writes and the token)", dependencies=[Depends(require_token)])
    async def upsert_texts(body: TextsBody) -> dict[str, Any]:  # type: ignore[valid-type]
        if body.ids is None:
            raise HTTPException(422, "upserting needs the ids of the texts to replace")
        ids = await worker.run(lambda idx: idx.upsert_texts(body.texts, metadata=body.metadata, ids=body.ids))
        return {"ids": ids}

    @app.post("/texts/delete", summary="Delete by ids, paths or a filter (needs --allow-writes and the token)", dependencies=[Depends(require_token)])
    async def delete(body: DeleteBody) -> dict[str, Any]:  # type: ignore[valid-type]
        if body.ids is None and body.paths is None and body.where is None:
            raise HTTPException(422, "say what to delete: ids, paths or where")
        deleted = await worker.run(lambda idx: idx.delete(ids=body.ids, paths=body.paths, where=body.where))
        return {"deleted": deleted}

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IndexCorruptError)
    async def corrupt(_: Request, error: IndexCorruptError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=503)

    @app.exception_handler(KosearchError)
    async def kosearch_error(_: Request, error: KosearchError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in problem.get('loc', ()))}: {problem.get('msg', 'invalid')}"
            for problem in error.errors()
        ]
        return JSONResponse({"error": "; ".join(problems) or "invalid request", "details": _plain(error.errors())}, status_code=422)


def _plain(value: Any) -> Any:
    """Validation details as JSON: pydantic may put the offending object (bytes, exceptions) in them."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
