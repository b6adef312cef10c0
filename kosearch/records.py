"""Records: texts a program hands to an index directly, each with an id and typed metadata.

``kosearch index`` reads files; an application (a notes app, a chat log, a service in front of an
index) has texts in memory and its own keys for them. A record is stored as a document of its own:
root ``''`` (no folder), path and ``record_id`` its id, format ``record``. Its text is split into
units exactly like a ``.txt`` file (sentences or passages, the index's recorded unit), and its
metadata becomes the typed ``fields`` of every unit, as the columns of a CSV/TSV/JSONL file do, so
the same ``where`` filters work on both: ``{"user": 3}``, ``"format = 'record'"``.

Ids are unique per index: the store keeps them in a column with a UNIQUE index
(``kosearch.store.metadata``), and ``add_texts`` refuses an id that is already there, naming it;
``upsert_texts`` replaces instead. An id not given is generated as ``uuid4().hex``: random, so it
needs no counter shared between processes or runs (which a later ``add_texts`` with a caller's
"1", "2"... could collide with), and 32 hex characters carry 122 random bits, so two never meet in
practice.

One call is one commit. Everything that can fail on the input (validation, splitting, encoding) is
done before the store is touched, then the rows, postings and vectors go in and one checkpoint
makes them durable together: a call that raises leaves the index as it was, and a kill leaves the
commit before the call or the one after it.

Deleting removes whole documents, never some units of one: a file comes back whole when its folder
is indexed again, and a document's units are its neighbours and its unit count. ``ids``, ``paths``
and ``where`` each narrow the selection (all given must hold), as in Chroma's ``delete``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kosearch.errors import RecordError, RecordExistsError
from kosearch.ingest import IngestOptions, _check_unit, _lexical_analyzer, sentence_row
from kosearch.results import RemovalReport
from kosearch.search.filters import BUILTIN_FIELDS, Filter, WhereSpec, is_field_name
from kosearch.search.morphemes import MorphemeAnalyzer
from kosearch.store import IndexStore
from kosearch.store.index_store import now
from kosearch.store.metadata import RECORDS_ROOT, StoredDocument
from kosearch.textclean import clean_text, escape_path

if TYPE_CHECKING:
    from kosearch.documents.types import Sentence

RECORD_FORMAT = "record"
"""The ``format`` of a record's document row: ``where="format = 'record'"`` selects records."""
MAX_INTEGER = 2**63 - 1
"""SQLite's integers are 64-bit; a larger one would come back from a filter as a float."""
LOOKUP_CHUNK = 500
"""Ids per SQL query (SQLite limits the bound parameters of one statement)."""

Encode = Callable[[list[str]], np.ndarray]
"""Text units -> their document vectors (``Encoder.encode_documents``); called only when there is
something to encode, so an upsert that changes nothing loads no model."""
Metadata = Mapping[str, Any]


def add_texts(
    store: IndexStore,
    encode: Encode,
    texts: Sequence[str],
    metadata: Sequence[Metadata | None] | None = None,
    ids: Sequence[str] | None = None,
    *,
    upsert: bool = False,
) -> list[str]:
    """Store ``texts`` as records and return their ids, in order (see the module docstring).

    With ``upsert`` an id already in the index is replaced (its text and metadata become exactly
    the ones given, so pass its metadata again to keep it); a record given unchanged is left as it
    is, without encoding it again.
    """
    _require_writable(store)
    texts = _checked_texts(texts)
    fields = _checked_metadata(metadata, len(texts))
    record_ids = _checked_ids(ids, len(texts), required=upsert)
    if not texts:
        return []
    existing = _records_by_id(store, record_ids)
    if existing and not upsert:
        raise RecordExistsError(
            f"{_some(existing)} already in the index {store.folder}; use upsert_texts to replace "
            f"{'it' if len(existing) == 1 else 'them'}, or delete first"
        )
    digests = [_digest(text, record_fields) for text, record_fields in zip(texts, fields)]
    changed = [
        i for i, record_id in enumerate(record_ids)
        if record_id not in existing or existing[record_id].sha256 != digests[i]
    ]
    if not changed:
        return record_ids

    # Everything that can fail on the input happens before the store is changed.
    unit = _check_unit(store, None)
    units = {i: _split(texts[i], fields[i], unit) for i in changed}
    for i in changed:
        if not units[i]:  # as a .txt file with this text would be skipped: no unit a search could match
            raise RecordError(
                f"texts[{i}] has no letter or digit to index ({texts[i][:40]!r}); a record needs some text a search can match"
            )
    unit_texts = [sentence.text for i in changed for sentence in units[i]]
    vectors = _encode_all(encode, unit_texts)
    tokens = _tokens(_lexical_analyzer(store), unit_texts)

    replaced = [existing[record_ids[i]].id for i in changed if record_ids[i] in existing]
    if replaced:
        store.remove_documents(replaced)
    next_document_id, next_unit_id = store.next_ids()
    stamp = now()
    rows: list[dict[str, Any]] = []
    for i in changed:
        document_id = next_document_id
        next_document_id += 1
        store.add_document(
            {
                "id": document_id,
                "root": RECORDS_ROOT,
                "path": record_ids[i],
                "record_id": record_ids[i],
                "sha256": digests[i],
                "size": len(texts[i].encode("utf-8")),
                "encoding": "utf-8",
                "format": RECORD_FORMAT,
                "sentences": len(units[i]),
                "indexed_at": stamp,
                "modified": stamp,
            }
        )
        # ensure_ascii=False: SQLite's json_extract matches keys as written (see search.filters).
        fields_json = json.dumps(fields[i], ensure_ascii=False) if fields[i] else None
        for position, sentence in enumerate(units[i]):
            rows.append(sentence_row(next_unit_id, document_id, position, sentence, fields_json))
            next_unit_id += 1
    store.add_sentences(rows, vectors, tokens)
    store.checkpoint()
    return record_ids


def delete(
    store: IndexStore,
    ids: Sequence[str] | None = None,
    paths: Sequence[str] | None = None,
    where: WhereSpec = None,
) -> RemovalReport:
    """Remove the documents chosen by record ``ids``, file ``paths`` (or globs) and a ``where`` filter.

    Each argument given narrows the choice (all must hold). ``paths`` name files relative to the
    folder they were indexed from (``old/2019/*.txt``; ``*`` stays inside one folder, ``**`` crosses
    folders, a folder stands for everything under it), or as paths on disk inside that folder;
    they never match records. ``where`` is a search filter: a document goes when any unit passes.
    """
    _require_writable(store)
    if ids is None and paths is None and where is None:
        raise RecordError("delete needs ids=, paths= or where= to say what to remove")
    report = RemovalReport()
    chosen: set[int] | None = None
    if ids is not None:
        record_ids = _checked_id_list(ids, "ids")
        found = _records_by_id(store, record_ids)
        report.unmatched.extend(record_id for record_id in record_ids if record_id not in found)
        chosen = _narrowed(chosen, {document.id for document in found.values()})
    if paths is not None:
        patterns = _checked_id_list(paths, "paths")
        matched: set[int] = set()
        for pattern in patterns:
            documents = documents_at(store, pattern)
            if not documents:
                report.unmatched.append(pattern)
            matched.update(document.id for document in documents)
        chosen = _narrowed(chosen, matched)
    if where is not None:
        condition = Filter.parse(where)
        if not condition:
            raise RecordError("delete(where=...) got an empty filter, which would remove everything; name a field")
        sql, parameters = condition.to_sql()
        chosen = _narrowed(chosen, {document.id for document in store.documents_where(sql, parameters)})
    assert chosen is not None
    if chosen:
        report.sentences = store.remove_documents(sorted(chosen))
        report.documents = len(chosen)
        store.checkpoint()
    return report


def documents_at(store: IndexStore, pattern: str) -> list[StoredDocument]:
    """The indexed files (never records) that ``pattern`` names; see :func:`delete`."""
    pattern = pattern.strip()
    if not pattern:
        return []
    found: dict[int, StoredDocument] = {}
    for root, relative in _root_relative(store, pattern):
        if relative == "":  # the indexed folder itself: all of it
            for document in store.documents_where("d.root = ?", [root]):
                found[document.id] = document
            continue
        prefix = _literal_prefix(relative)
        candidates = store.documents_where("d.root = ? and d.path glob ?", [root, _glob_escape(prefix) + "*"])
        for document in candidates:
            if _path_matches(document.path, relative):
                found[document.id] = document
    return [found[key] for key in sorted(found)]


# -- input checks -------------------------------------------------------------------------------


def _require_writable(store: IndexStore) -> None:
    if not store.writable:
        raise RecordError(
            f"the index {store.folder} was opened for reading; open it with "
            f"kosearch.Index.open(path, writable=True) or kosearch.Index.open_or_create(path) to change it"
        )


def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise RecordError(
            f"texts is a list of strings, not {type(texts).__name__}; wrap a single text in a list: [text]"
        )
    checked: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RecordError(f"texts[{i}] is {type(text).__name__}, not a string; pass the text itself")
        text = clean_text(text)  # lone surrogates and NULs, which tokenizers and SQLite refuse
        if not text.strip():
            raise RecordError(f"texts[{i}] is empty; a record needs some text to index")
        checked.append(text)
    return checked


def _checked_ids(ids: Sequence[str] | None, count: int, *, required: bool) -> list[str]:
    if ids is None:
        if required:
            raise RecordError("upsert_texts needs ids=: the ids of the records to add or replace")
        return [uuid.uuid4().hex for _ in range(count)]
    checked = _checked_id_list(ids, "ids")
    if len(checked) != count:
        raise RecordError(f"{count} texts but {len(checked)} ids; give one id per text")
    seen: set[str] = set()
    for record_id in checked:
        if record_id in seen:
            raise RecordError(f"the id {record_id!r} is given twice; ids are unique per index")
        seen.add(record_id)
    return checked


def _checked_id_list(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise RecordError(f"{name} is a list of strings, not {type(values).__name__}; wrap a single one: [{name[:-1]}]")
    checked: list[str] = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise RecordError(
                f"{name}[{i}] is {type(value).__name__}, not a string"
                + ("; ids are strings: use str(value)" if name == "ids" else "")
            )
        if not value.strip():
            raise RecordError(f"{name}[{i}] is empty")
        if name == "ids" and clean_text(value) != value:
            raise RecordError(f"ids[{i}] holds a NUL or a lone surrogate, which the index cannot store: {value!r}")
        checked.append(value)
    return checked


def _checked_metadata(metadata: Sequence[Metadata | None] | None, count: int) -> list[dict[str, Any] | None]:
    """One dict of typed fields (or None) per text, flattened and checked (see :func:`_flatten`)."""
    if metadata is None:
        return [None] * count
    if isinstance(metadata, Mapping):
        raise RecordError(
            "metadata is a list with one dict per text, not a single dict; "
            "for the same metadata on every text pass [metadata] * len(texts)"
        )
    if isinstance(metadata, (str, bytes)) or not isinstance(metadata, Sequence):
        raise RecordError(f"metadata is a list with one dict per text, not {type(metadata).__name__}")
    if len(metadata) != count:
        raise RecordError(f"{count} texts but {len(metadata)} metadata dicts; give one per text (None for none)")
    checked: list[dict[str, Any] | None] = []
    for i, item in enumerate(metadata):
        if item is None:
            checked.append(None)
            continue
        if not isinstance(item, Mapping):
            raise RecordError(f"metadata[{i}] is {type(item).__name__}, not a dict such as {{'user': 3}}")
        flat: dict[str, Any] = {}
        _flatten(item, "", flat, f"metadata[{i}]")
        checked.append(flat or None)
    return checked


def _flatten(item: Mapping[str, Any], prefix: str, into: dict[str, Any], where: str) -> None:
    """Nested dicts become dotted keys (``{"a": {"b": 1}}`` -> ``a.b``), as JSONL key paths do.

    Keys must be names a filter can use, and not a built-in field (``path``, ``format``...), which a
    filter would read instead; values are what a filter compares (None is left out, as an empty
    CSV cell is). Lists are refused: a filter cannot look inside them.
    """
    for key, value in item.items():
        if not isinstance(key, str):
            raise RecordError(f"{where}: keys are strings, not {key!r}")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", into, where)
            continue
        if not is_field_name(name):
            raise RecordError(
                f"{where}: {name!r} is not a name a filter can use (letters, digits, '_', '.', '-', "
                f"starting with a letter); rename it"
            )
        if name in BUILTIN_FIELDS:
            raise RecordError(
                f"{where}: {name!r} is a built-in field ({', '.join(BUILTIN_FIELDS)}) that filters read "
                f"from the document; rename it, e.g. 'record_{name}'"
            )
        if value is None:
            continue
        if isinstance(value, str):
            value = clean_text(value)
        elif isinstance(value, bool):
            pass
        elif isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise RecordError(f"{where}: {name!r} = {value} does not fit in 64 bits; store it as a string")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise RecordError(f"{where}: {name!r} = {value} cannot be stored or compared; use a finite number")
        elif isinstance(value, (list, tuple, set, frozenset)):
            raise RecordError(
                f"{where}: {name!r} is a list; metadata values are single strings, numbers or booleans "
                "(a filter cannot look inside a list): join them into a string or use one key per item"
            )
        else:
            raise RecordError(
                f"{where}: {name!r} is {type(value).__name__}; metadata values are strings, numbers, "
                "booleans or None (convert it, e.g. a date with .isoformat())"
            )
        into[name] = value


# -- writing helpers ----------------------------------------------------------------------------


def _records_by_id(store: IndexStore, record_ids: Sequence[str]) -> dict[str, StoredDocument]:
    found: dict[str, StoredDocument] = {}
    for start in range(0, len(record_ids), LOOKUP_CHUNK):
        chunk = list(record_ids[start : start + LOOKUP_CHUNK])
        marks = ",".join("?" * len(chunk))
        for document in store.documents_where(f"d.record_id in ({marks})", chunk):
            assert document.record_id is not None
            found[document.record_id] = document
    return found


def _some(existing: Mapping[str, StoredDocument], shown: int = 5) -> str:
    names = ", ".join(repr(record_id) for record_id in list(existing)[:shown])
    more = f" (and {len(existing) - shown} more)" if len(existing) > shown else ""
    return f"the id {names} is" if len(existing) == 1 else f"the ids {names}{more} are"


def _digest(text: str, fields: dict[str, Any] | None) -> str:
    """What a record's row keeps as ``sha256``: an upsert of the same text and metadata changes nothing."""
    canonical = json.dumps({"text": text, "fields": fields or {}}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _split(text: str, fields: dict[str, Any] | None, unit: str) -> list[Sentence]:
    """A record's units, split as a ``.txt`` file with this text would be, each carrying the fields."""
    from kosearch.documents.plaintext import read_plain_text
    from kosearch.documents.split import split_records

    records = read_plain_text(text)
    for record in records:
        record.fields = fields
    return split_records(records, source=text, mode=unit)  # type: ignore[arg-type]


def _encode_all(encode: Encode, texts: list[str]) -> np.ndarray:
    batch = IngestOptions.encode_batch_sentences  # as many units per encoder call as ingestion
    parts = [np.asarray(encode(texts[start : start + batch]), dtype=np.float32) for start in range(0, len(texts), batch)]
    return np.concatenate(parts)


def _tokens(analyzer: MorphemeAnalyzer, texts: list[str]) -> list[str]:
    return [" ".join(tokens) for tokens in analyzer.analyze_batch(texts)]


def _narrowed(chosen: set[int] | None, more: set[int]) -> set[int]:
    return more if chosen is None else chosen & more


# -- paths and globs ----------------------------------------------------------------------------


def _root_relative(store: IndexStore, pattern: str) -> list[tuple[str, str]]:
    """``(root, pattern relative to it)`` for every indexed folder ``pattern`` may mean.

    A relative pattern is taken as relative to each indexed folder; an absolute one, or one that
    exists on disk from the current folder (what a shell's own glob expansion hands over), also as
    that path inside the folder that holds it.
    """
    roots = store.roots()
    meanings: list[tuple[str, str]] = []
    cleaned = _normalised(pattern)
    if not os.path.isabs(pattern):
        meanings.extend((root, cleaned) for root in roots)
    if os.path.isabs(pattern) or os.path.lexists(pattern):
        on_disk = escape_path(str(Path(os.path.abspath(pattern)).resolve()))  # roots are stored resolved
        for root in roots:
            if on_disk == root:
                meanings.append((root, ""))
            elif on_disk.startswith(root.rstrip("/") + "/"):
                meanings.append((root, on_disk[len(root.rstrip("/")) + 1 :]))
    return list(dict.fromkeys(meanings))


def _normalised(pattern: str) -> str:
    parts = [part for part in escape_path(pattern).split("/") if part not in ("", ".")]
    return "/".join(parts)


_GLOB_MAGIC = frozenset("*?[")


def _literal_prefix(pattern: str) -> str:
    for position, char in enumerate(pattern):
        if char in _GLOB_MAGIC:
            return pattern[:position]
    return pattern


def _glob_escape(text: str) -> str:
    """``text`` as a literal for SQLite's GLOB (``[*]`` matches a star)."""
    return "".join(f"[{char}]" if char in _GLOB_MAGIC else char for char in text)


def _path_matches(path: str, pattern: str) -> bool:
    """Whether ``pattern`` names ``path`` or a folder above it: ``*`` and ``?`` stay inside one path
    part, ``**`` spans any number of them (as in a shell with globstar); an exact name always matches,
    so a file named ``a[1].txt`` can be removed by its name."""
    if path == pattern or path.startswith(pattern + "/"):
        return True
    if not any(char in _GLOB_MAGIC for char in pattern):
        return False
    return _parts_match(path.split("/"), pattern.split("/"))


def _parts_match(parts: list[str], patterns: list[str]) -> bool:
    if not patterns:
        return True  # the pattern named a folder above the rest of the path
    if patterns[0] == "**":
        return _parts_match(parts, patterns[1:]) or (bool(parts) and _parts_match(parts[1:], patterns))
    if not parts:
        return False
    return fnmatch.fnmatchcase(parts[0], patterns[0]) and _parts_match(parts[1:], patterns[1:])
