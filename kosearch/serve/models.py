"""Request schemas of the service, derived from the facade's own option dataclass.

A search's options (k, context, mode, where, group_by, fusion, lexical_weight, bm25_k1, bm25_b) are declared once, in
:class:`kosearch.search.hybrid.SearchRequest` (imported through the facade, :mod:`kosearch.index`); the GET query parameters and the POST body are built
from its fields here, adding only what HTTP needs: the bounds of :class:`ServiceLimits` and the
choices a field may take, so OpenAPI documents them and a bad value is a 422 before any work.
A field added to ``SearchRequest`` appears in both schemas without an edit here.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from kosearch.index import FUSIONS, GROUPS, MODES, SearchRequest
from kosearch.serve.limits import ServiceLimits

ModeName = Literal[MODES]  # type: ignore[valid-type]
FusionName = Literal[FUSIONS]  # type: ignore[valid-type]
GroupName = Literal[GROUPS]  # type: ignore[valid-type]


def _option_fields(limits: ServiceLimits, *, where_type: Any) -> dict[str, Any]:
    """``SearchRequest``'s fields as pydantic fields, with HTTP bounds and choices added."""
    hints = typing.get_type_hints(SearchRequest, include_extras=False, localns={"Filter": Any})
    special: dict[str, tuple[Any, Any]] = {
        "k": (int, Field(10, ge=1, le=limits.max_k, description="Hits per query.")),
        "context": (int, Field(0, ge=0, le=limits.max_context, description="Neighbouring sentences per hit.")),
        "mode": (Optional[ModeName], Field(None, description="dense, lexical or hybrid (default: hybrid when the index has a lexical index).")),
        "where": (where_type, Field(None, description="Filter applied before ranking, e.g. \"format = 'pdf'\" or {\"rating\": {\">=\": 9}}.")),
        "group_by": (Optional[GroupName], Field(None, description="'document': one hit per document.")),
        "fusion": (FusionName, Field("convex", description="How hybrid mode fuses: convex or rrf.")),
        "lexical_weight": (Optional[float], Field(None, ge=0.0, le=1.0, description="Lexical weight of convex fusion.")),
        "bm25_k1": (Optional[float], Field(None, ge=0.0, le=10.0, description="BM25 k1 of the lexical signal.")),
        "bm25_b": (Optional[float], Field(None, ge=0.0, le=1.0, description="BM25 b (length normalisation) of the lexical signal.")),
    }
    fields: dict[str, Any] = {}
    for option in dataclasses.fields(SearchRequest):
        fields[option.name] = special.get(option.name, (hints[option.name], option.default))
    return fields


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def search_models(limits: ServiceLimits) -> tuple[type[BaseModel], type[BaseModel]]:
    """``(SearchQuery, SearchBatch)``: the GET query parameters and the POST body of ``/search``."""
    query_text = Field(..., min_length=1, max_length=limits.max_query_chars, description="The query.")
    search_query = create_model(
        "SearchQuery",
        __base__=_Strict,
        q=(str, query_text),
        **_option_fields(limits, where_type=Optional[list[str]]),
    )
    search_batch = create_model(
        "SearchBatch",
        __base__=_Strict,
        queries=(
            list[typing.Annotated[str, Field(min_length=1, max_length=limits.max_query_chars)]],
            Field(..., min_length=1, max_length=limits.max_batch, description="Query texts."),
        ),
        **_option_fields(limits, where_type=Optional[Union[str, list[str], dict[str, Any]]]),
    )
    return search_query, search_batch


def write_models(limits: ServiceLimits) -> tuple[type[BaseModel], type[BaseModel]]:
    """``(TextsBody, DeleteBody)``: what the write endpoints accept (only with ``--allow-writes``)."""
    text = typing.Annotated[str, Field(min_length=1, max_length=limits.max_text_chars)]
    identifier = typing.Annotated[str, Field(min_length=1, max_length=256)]
    texts_body = create_model(
        "TextsBody",
        __base__=_Strict,
        texts=(list[text], Field(..., min_length=1, max_length=limits.max_batch)),
        metadata=(Optional[list[dict[str, Any]]], Field(None, description="One mapping of typed fields per text.")),
        ids=(Optional[list[identifier]], Field(None, description="Caller-given ids, unique in the index.")),
    )
    delete_body = create_model(
        "DeleteBody",
        __base__=_Strict,
        ids=(Optional[list[identifier]], Field(None, max_length=10_000)),
        paths=(Optional[list[str]], Field(None, max_length=10_000)),
        where=(Optional[Union[str, list[str], dict[str, Any]]], Field(None)),
    )
    return texts_body, delete_body
