"""The SQLite side of an index: documents, sentences, their lexical postings, skipped files, the manifest.

SQLite is the index's source of truth. A sentence's row id is also its FAISS id, and the manifest
names the one FAISS file that matches the committed rows, so a single SQLite transaction is what
moves an index from one consistent state to the next (see ``kosearch.store.index_store``). The
transaction helpers here are the two SQLite features that protocol rests on: a writer's long
transaction (rows wait in SQLite, not in Python) and a reader's snapshot (one generation, whatever
is committed meanwhile).

The lexical index is an FTS5 table ``lexical(tokens)`` whose rowid is the sentence id and whose
text is the sentence's morphemes joined by spaces (computed above the store, by ingestion; this
module stores and queries strings). It lives in the same database, so its rows are written and
deleted in the same transaction as the sentence rows and can never disagree with them.
It is the index's durable token store: searches read the BM25 postings files built from it
(``kosearch.store.postings``); ``lexical_search`` here (FTS5's own ``bm25()``, k1 = 1.2, b = 0.75)
stays for benchmarks and tests that compare against FTS5.

Records. A text added through the records API (``Index.add_texts``) is a document whose
``record_id`` is the caller's id (or a generated one); a UNIQUE index on that column is what makes
ids unique per index, whatever the code above does. Documents from folders have no ``record_id``
(NULL, which a UNIQUE index allows many of). See ``kosearch.records``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from kosearch.types import SkippedFile
from kosearch.errors import IndexCorruptError
from kosearch.results import IndexedSentence

SCHEMA_VERSION = 3
"""1: documents, sentences, lexical, skipped, manifest. 2: ``documents.record_id`` (UNIQUE), added in
place by the first writer that opens a version-1 index (``ensure_schema``); a kosearch that knows
only version 1 refuses to open a version-2 index rather than write records it cannot keep unique.
3: segmented vectors (manifest key ``segments`` instead of ``vectors_file``) and the ``tombstones``
table; the first writer turns an older index's single vector file into one segment
(``IndexStore._migrate``), and a kosearch that knows only version 2 refuses the result instead of
looking for a ``vectors_file`` that is no longer there."""
RECORDS_ROOT = ""
"""The ``root`` of every record: no folder resolves to '', so records and files never share a key."""


@dataclass(frozen=True)
class StoredDocument:
    id: int
    root: str
    path: str
    sha256: str
    record_id: str | None = None
    """The caller's id of a record (``Index.add_texts``); None for a document read from a folder."""


class MetadataStore:
    """Typed access to ``metadata.sqlite``; every write goes through ``transaction()``.

    Opening creates no tables: a reader must not write, and a writer creates the schema in the
    same transaction as the manifest (``ensure_schema``), so that a half-made index is
    recognisable as such.
    """

    WRITER_CACHE_KIB = 256 * 1024
    """The page cache of a writer's connection (SQLite's default is 2 MB; it fills only as needed)."""
    ANALYSIS_LIMIT = 1000
    """Rows ``ANALYZE`` reads per index (SQLite's advice for ``PRAGMA optimize`` is 400-1000): the
    statistics stay cheap to refresh however large the index grows."""

    def __init__(self, path: Path, *, shared: bool = False, writer: bool = False) -> None:
        """``shared``: the connection may be used from any thread (its user serialises the calls).

        ``writer``: the connection of the one writer. Its savepoints' temporary files are kept in memory
        and its page cache is larger, so a long run does not push its rows through temporary files and
        early WAL spills: at 200k units this cut the bytes written by indexing from 7.4x to 1.19x the final
        size, for about 60 MB more peak memory (docs/benchmarks.md, "Living index at scale").
        """
        self.path = path
        self.db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=not shared))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        if writer:
            self.db.execute("PRAGMA temp_store=MEMORY")
            self.db.execute(f"PRAGMA cache_size=-{self.WRITER_CACHE_KIB}")
        self._columns: dict[str, set[str]] = {}

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        """A context manager: everything inside commits together or not at all.

        Inside an open ``begin_writing`` transaction it is a savepoint, committed with it.
        """
        return self.db.atomic()

    # -- transactions that span many calls ------------------------------------------------------

    def begin_writing(self) -> None:
        """Open (if none is) the write transaction that the next ``commit`` makes durable."""
        if not self.db.conn.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.conn.commit()

    def rollback(self) -> None:
        self.db.conn.rollback()

    def truncate_wal(self) -> None:
        """Copy the committed WAL into the database file and cut the WAL to zero bytes.

        SQLite reuses its WAL file without shrinking it, so after a long run it can hold as many
        bytes as the run wrote; this gives them back. Inside an open transaction it does nothing
        (SQLite would refuse). When a reader (``kosearch serve``, say) still holds an older snapshot,
        the WAL cannot be cut: rather than wait out the busy timeout for a reader that may never let
        go, it copies what it can and returns at once; a later checkpoint empties the WAL.
        """
        if self.db.conn.in_transaction:
            return
        previous = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.OperationalError:  # busy: a reader holds the WAL
            pass
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(previous)}")

    def release_memory(self) -> None:
        """Free this connection's page cache (``PRAGMA shrink_memory``; up to ``WRITER_CACHE_KIB`` for a
        writer) before a long phase that reads no rows, a merge; it fills again as rows are read."""
        self.db.execute("PRAGMA shrink_memory")

    def refresh_statistics(self) -> None:
        """Let SQLite's query planner know the tables' shapes (``ANALYZE``, bounded by ``analysis_limit``).

        Without statistics SQLite joins a filter's ``sentences s join documents d`` by scanning every
        sentence and looking its document up, whatever the filter: on the 1.23M-sentence NSMC index a
        ``path GLOB`` matching 1% of the units took 125 ms that way and 4 ms once ``ANALYZE`` had run
        (documents first, then their sentences by index); 10%: 162 ms -> 40 ms. ``ANALYZE`` of that
        index took 0.2 s. Inside an open transaction it does nothing. A reader's connection loads the
        statistics with the schema: one opened before the first ``ANALYZE`` sees them at its next
        statement (creating ``sqlite_stat1`` changes the schema), later refreshes only once it reconnects.
        """
        if self.db.conn.in_transaction:
            return
        self.db.execute(f"PRAGMA analysis_limit = {self.ANALYSIS_LIMIT}")
        self.db.execute("ANALYZE")

    def begin_snapshot(self) -> None:
        """Start a read transaction: every read until ``end_snapshot`` sees one committed state."""
        self.end_snapshot()
        self.db.execute("BEGIN")
        # A WAL snapshot is taken at the first read, not at BEGIN.
        self.db.execute("select count(*) from sqlite_master").fetchone()

    def end_snapshot(self) -> None:
        if self.db.conn.in_transaction:
            self.db.conn.rollback()

    def ensure_schema(self) -> None:
        with self.transaction():
            if "manifest" not in self.db.table_names():
                self.db["manifest"].create({"key": str, "value": str}, pk="key")
            if "documents" not in self.db.table_names():
                self.db["documents"].create(
                    {
                        "id": int,
                        "root": str,
                        "path": str,
                        "sha256": str,
                        "size": int,
                        "encoding": str,
                        "format": str,
                        "sentences": int,
                        "indexed_at": str,
                        "modified": str,
                        "record_id": str,
                    },
                    pk="id",
                )
                self.db["documents"].create_index(["root", "path"], unique=True)
            elif "modified" not in self.db["documents"].columns_dict:
                self.db.execute("alter table documents add column modified text")
            if "record_id" not in self.db["documents"].columns_dict:
                # Schema 1 -> 2: existing documents are all from folders, so all get NULL.
                self.db.execute("alter table documents add column record_id text")
            self.db.execute(
                "create unique index if not exists idx_documents_record_id on documents (record_id)"
            )
            if "sentences" not in self.db.table_names():
                self.db["sentences"].create(
                    {
                        "id": int,
                        "document_id": int,
                        "position": int,
                        "text": str,
                        "line": int,
                        "start": int,
                        "end": int,
                        "page": int,
                        "fields": str,
                    },
                    pk="id",
                    foreign_keys=[("document_id", "documents", "id")],
                )
                self.db["sentences"].create_index(["document_id", "position"], unique=True)
                self.db["sentences"].create_index(["text"])
            elif "page" not in self.db["sentences"].columns_dict:
                # Indexes made before PDF support: the column is nullable, so old rows just have no page.
                self.db.execute("alter table sentences add column page integer")
            if "fields" not in self.db["sentences"].columns_dict:
                # Typed metadata of CSV/TSV/JSONL units, as JSON (ensure_ascii=False: filters match keys as written).
                self.db.execute("alter table sentences add column fields text")
            if not self.has_lexical_table():
                # Older indexes get an empty table here; ingestion fills it for their sentences.
                self.db.execute(
                    "create virtual table lexical using fts5(tokens, tokenize='unicode61 remove_diacritics 0')"
                )
            if "tombstones" not in self.db.table_names():
                # Ids of vectors deleted since their segment was written (see index_store).
                self.db.execute("create table tombstones (id integer primary key)")
            if "skipped" not in self.db.table_names():
                self.db["skipped"].create(
                    {"root": str, "path": str, "reason": str, "seen_at": str}, pk=("root", "path")
                )
            recorded = self.manifest()
            if ("vectors_file" in recorded or "segments" in recorded) and int(recorded.get("schema_version", 0)) < SCHEMA_VERSION:
                # A finished index whose tables were just brought up to date (a new one gets its
                # version with the rest of its manifest).
                self.set_manifest({"schema_version": SCHEMA_VERSION})
        self._columns.clear()  # columns read before a migration are stale

    # -- manifest -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The manifest's values; empty when the table does not exist (a creation that never finished)."""
        if "manifest" not in self.db.table_names():
            return {}
        values: dict[str, Any] = {}
        for key, value in self.db.execute("select key, value from manifest"):
            try:
                values[key] = json.loads(value)
            except (TypeError, ValueError):
                raise IndexCorruptError(
                    f"{self.path} is damaged: the manifest value of {key!r} is not JSON ({str(value)[:60]!r}); "
                    f"delete {self.path.parent} and rebuild it with `kosearch index DOCS --index {self.path.parent}`"
                ) from None
        return values

    def delete_manifest_key(self, key: str) -> None:
        self.db.execute("delete from manifest where key = ?", [key])

    def set_manifest(self, values: dict[str, Any]) -> None:
        self.db["manifest"].upsert_all(
            [{"key": key, "value": json.dumps(value, ensure_ascii=False)} for key, value in values.items()],
            pk="key",
        )

    def delete_manifest_keys(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.db.execute("delete from manifest where key = ?", [key])

    # -- tombstones -----------------------------------------------------------------------------

    def tombstone_ids(self) -> list[int]:
        """Ids deleted but still in a segment file; none in an index made before segments."""
        if not self._has_table("tombstones"):
            return []
        return [row[0] for row in self.db.execute("select id from tombstones order by id")]

    def tombstone_count(self) -> int:
        if not self._has_table("tombstones"):
            return 0
        return int(self.db.execute("select count(*) from tombstones").fetchone()[0])

    def insert_tombstones(self, ids: Iterable[int]) -> None:
        self.db.conn.executemany("insert or ignore into tombstones (id) values (?)", ((int(i),) for i in ids))

    def delete_tombstones(self, ids: Iterable[int]) -> None:
        self.db.conn.executemany("delete from tombstones where id = ?", ((int(i),) for i in ids))

    def _has_table(self, name: str) -> bool:
        return (
            self.db.execute("select 1 from sqlite_master where type = 'table' and name = ?", [name]).fetchone()
            is not None
        )

    # -- documents ------------------------------------------------------------------------------

    def documents_under(self, root: str) -> dict[str, StoredDocument]:
        rows = self.db.execute(
            "select id, root, path, sha256 from documents where root = ?", [root]
        ).fetchall()
        return {row[2]: StoredDocument(*row) for row in rows}

    def document_at(self, root: str, path: str) -> StoredDocument | None:
        row = self.db.execute(
            "select id, root, path, sha256 from documents where root = ? and path = ?", [root, path]
        ).fetchone()
        return None if row is None else StoredDocument(*row)

    def documents_where(self, where_sql: str, parameters: Sequence[Any]) -> list[StoredDocument]:
        """Documents for which ``where_sql`` holds, by id.

        ``where_sql`` is over ``documents d`` and ``sentences s`` (as a search filter is): a
        document is chosen when any of its units passes, or, for a condition on ``d`` only, when it
        passes itself (a document without units is joined to a row of nulls).
        """
        rows = self.db.execute(
            "select distinct d.id, d.root, d.path, d.sha256, d.record_id from documents d "
            f"left join sentences s on s.document_id = d.id where {self.filter_sql(where_sql)} order by d.id",
            list(parameters),
        ).fetchall()
        return [StoredDocument(*row) for row in rows]

    def complete_document(self, document_id: int, sha256: str) -> None:
        """Record a document's hash once all its sentences are in (until then it reads as changed)."""
        self.db.execute("update documents set sha256 = ? where id = ?", [sha256, document_id])

    def start_seen(self) -> None:
        """Begin a run's list of seen paths: a temporary table, so it lives on disk, not in Python."""
        self.db.execute("create temp table if not exists kosearch_seen (path text primary key)")
        self.db.execute("delete from temp.kosearch_seen")

    def remember_seen(self, path: str) -> None:
        self.db.execute("insert or ignore into temp.kosearch_seen (path) values (?)", [path])

    def unseen_documents(self, root: str, below_id: int, after_id: int = 0, limit: int = 500) -> list[StoredDocument]:
        """Documents under ``root`` with ids in (after_id, below_id) whose path was not seen, by id."""
        rows = self.db.execute(
            "select id, root, path, sha256 from documents where root = ? and id > ? and id < ? "
            "and path not in (select path from temp.kosearch_seen) order by id limit ?",
            [root, after_id, below_id, limit],
        ).fetchall()
        return [StoredDocument(*row) for row in rows]

    def next_ids(self) -> tuple[int, int]:
        """The next free document and sentence ids (ids are never reused within an index)."""
        document = self.db.execute("select coalesce(max(id), 0) + 1 from documents").fetchone()[0]
        sentence = self.db.execute("select coalesce(max(id), 0) + 1 from sentences").fetchone()[0]
        floor = self.manifest().get("next_sentence_id", 1)
        return int(document), max(int(sentence), int(floor))

    def sentence_ids_of(self, document_ids: Sequence[int]) -> list[int]:
        ids: list[int] = []
        for chunk in _chunks(list(document_ids), 500):
            marks = ",".join("?" * len(chunk))
            ids.extend(
                row[0]
                for row in self.db.execute(
                    f"select id from sentences where document_id in ({marks})", chunk
                )
            )
        return ids

    def insert_documents(self, documents: list[dict[str, Any]], sentences: list[dict[str, Any]]) -> None:
        if documents:
            self.db["documents"].insert_all(documents, batch_size=1000)
        if sentences:
            self.db["sentences"].insert_all(sentences, batch_size=5000)

    def insert_lexical(self, sentence_ids: Sequence[int], tokens: Sequence[str]) -> None:
        """Postings of sentences: ``tokens[i]`` is sentence ``sentence_ids[i]``'s tokens joined by spaces."""
        self.db.conn.executemany(
            "insert into lexical(rowid, tokens) values (?, ?)", zip((int(i) for i in sentence_ids), tokens)
        )

    def sentences_without_lexical(self, limit: int = 2000) -> list[tuple[int, str]]:
        """``(id, text)`` of sentences that have no lexical row yet (an index made before the lexical index)."""
        return self.db.execute(
            "select id, text from sentences where id not in (select rowid from lexical) order by id limit ?",
            [limit],
        ).fetchall()

    def lexical_tokens(self, ids: Sequence[int] | None = None) -> tuple[list[int], list[str]]:
        """``(ids, tokens)`` of the lexical rows (all of them, or those of ``ids``), by id: the durable
        token store that the postings files (``kosearch.store.postings``) are built from."""
        if ids is None:
            rows = self.db.execute("select rowid, tokens from lexical order by rowid").fetchall()
        else:
            rows = []
            wanted = [int(i) for i in ids]
            for chunk in _chunks(wanted, 900):
                marks = ",".join("?" * len(chunk))
                rows.extend(self.db.execute(f"select rowid, tokens from lexical where rowid in ({marks})", chunk).fetchall())
            rows.sort()
        return [int(row[0]) for row in rows], [row[1] for row in rows]

    def lexical_count(self) -> int:
        return int(self.db.execute("select count(*) from lexical").fetchone()[0])

    def has_lexical_table(self) -> bool:
        return (
            self.db.execute("select 1 from sqlite_master where type = 'table' and name = 'lexical'").fetchone()
            is not None
        )

    def delete_documents(self, document_ids: Sequence[int]) -> None:
        lexical = self.has_lexical_table()
        for chunk in _chunks(list(document_ids), 500):
            marks = ",".join("?" * len(chunk))
            if lexical:
                self.db.execute(
                    f"delete from lexical where rowid in (select id from sentences where document_id in ({marks}))",
                    chunk,
                )
            self.db.execute(f"delete from sentences where document_id in ({marks})", chunk)
            self.db.execute(f"delete from documents where id in ({marks})", chunk)

    def replace_skipped(self, root: str, skipped: Iterable[SkippedFile], when: str) -> None:
        self.db.execute("delete from skipped where root = ?", [root])
        self.db["skipped"].insert_all(
            [{"root": root, "path": s.path, "reason": s.reason, "seen_at": when} for s in skipped],
            pk=("root", "path"),
            replace=True,
        )

    # -- reads ----------------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        documents = self.db.execute("select count(*) from documents").fetchone()[0]
        sentences = self.db.execute("select count(*) from sentences").fetchone()[0]
        return int(documents), int(sentences)

    def roots(self) -> list[str]:
        # Records come from no folder.
        return [
            row[0]
            for row in self.db.execute(
                "select distinct root from documents where root != ? order by root", [RECORDS_ROOT]
            )
        ]

    def skipped(self) -> list[SkippedFile]:
        return [
            SkippedFile(path=str(Path(row[0]) / row[1]), reason=row[2])
            for row in self.db.execute("select root, path, reason from skipped order by root, path")
        ]

    def sentences_by_id(self, ids: Iterable[int]) -> dict[int, IndexedSentence]:
        wanted = sorted({int(i) for i in ids if i >= 0})
        found: dict[int, IndexedSentence] = {}
        page, fields = self._column("sentences", "page", "s"), self._column("sentences", "fields", "s")
        for chunk in _chunks(wanted, 900):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"select s.id, s.text, d.path, s.line, s.start, s.end, d.root, {page}, {fields} "
                f"from sentences s join documents d on d.id = s.document_id where s.id in ({marks})",
                chunk,
            ):
                found[row[0]] = IndexedSentence(*row[:8], fields=json.loads(row[8]) if row[8] else {})
        return found

    def _column(self, table: str, column: str, alias: str) -> str:
        # A reader does not migrate (it must not write): an index made before a column was stored,
        # and not written since, has no such column until its next writer adds it.
        if table not in self._columns:
            self._columns[table] = set(self.db[table].columns_dict)
        return f"{alias}.{column}" if column in self._columns[table] else "null"

    # -- filtered and lexical reads -------------------------------------------------------------

    def filter_sql(self, where_sql: str) -> str:
        """``where_sql`` (over ``documents d`` and ``sentences s``) with columns an old index lacks read as null."""
        for table, alias, column in (("documents", "d", "modified"), ("sentences", "s", "fields")):
            if self._column(table, column, alias) == "null":
                where_sql = where_sql.replace(f"{alias}.{column}", "null")
        return where_sql

    def allowed_ids(self, where_sql: str, parameters: Sequence[Any]) -> list[int]:
        """Ids of the sentences for which ``where_sql`` (over ``documents d``, ``sentences s``) holds."""
        return [
            row[0]
            for row in self.db.execute(
                f"select s.id from sentences s join documents d on d.id = s.document_id "
                f"where {self.filter_sql(where_sql)}",
                list(parameters),
            )
        ]

    def lexical_search(
        self, match: str, k: int, where_sql: str = "1", parameters: Sequence[Any] = ()
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(sentence id, BM25 score)`` for an FTS5 MATCH expression, best first.

        FTS5's ``bm25()`` (k1 = 1.2, b = 0.75) is negated, so higher is better as for the dense score.
        The filter is part of the same query, so k rows come back whenever k matching rows pass it.
        """
        if not match:
            return []
        rows = self.db.execute(
            "select lexical.rowid, -bm25(lexical) from lexical "
            "join sentences s on s.id = lexical.rowid join documents d on d.id = s.document_id "
            f"where lexical match ? and ({self.filter_sql(where_sql)}) order by bm25(lexical), lexical.rowid limit ?",
            [match, *parameters, int(k)],
        ).fetchall()
        return [(int(i), float(score)) for i, score in rows]

    def unit_document(self, ids: Iterable[int]) -> dict[int, int]:
        """Sentence id -> its document id."""
        wanted = sorted({int(i) for i in ids})
        found: dict[int, int] = {}
        for chunk in _chunks(wanted, 900):
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"select id, document_id from sentences where id in ({marks})", chunk).fetchall())
        return found

    def neighbours(self, sentence_id: int, before: int, after: int) -> tuple[list[str], list[str]]:
        """The texts of up to ``before``/``after`` sentences around one, in the same document."""
        row = self.db.execute(
            "select document_id, position from sentences where id = ?", [sentence_id]
        ).fetchone()
        if row is None:
            return [], []
        document_id, position = row
        rows = self.db.execute(
            "select position, text from sentences where document_id = ? "
            "and position between ? and ? order by position",
            [document_id, position - before, position + after],
        ).fetchall()
        return (
            [text for p, text in rows if p < position],
            [text for p, text in rows if p > position],
        )

    def document(self, document_id: int) -> dict[str, Any] | None:
        """One document row (without its hash) and its number of units; None when there is none."""
        row = self.db.execute(
            "select id, root, path, format, size, encoding, modified, indexed_at, sentences "
            "from documents where id = ?",
            [int(document_id)],
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "root", "path", "format", "size", "encoding", "modified", "indexed_at", "units")
        return dict(zip(keys, row))

    def unit_ids_of_document(self, document_id: int, limit: int) -> list[int]:
        """The first ``limit`` unit ids of a document, in reading order."""
        return [
            row[0]
            for row in self.db.execute(
                "select id from sentences where document_id = ? order by position limit ?", [int(document_id), int(limit)]
            )
        ]

    def field_names(self, sample: int) -> dict[str, str]:
        """Typed metadata field -> JSON type, from the first ``sample`` units that have fields.

        A sample, not a scan: the search page needs the fields to offer, and reading every unit's JSON
        of a million-unit index for that would take seconds.
        """
        if self._column("sentences", "fields", "s") == "null":
            return {}
        found: dict[str, str] = {}
        for key, kind in self.db.execute(
            "select j.key, j.type from (select fields from sentences where fields is not null limit ?) s, "
            "json_each(s.fields) j",
            [int(sample)],
        ):
            found.setdefault(str(key), str(kind))
        return found

    def duplicate_groups(self) -> Iterator[tuple[int, int]]:
        """Yield ``(representative_id, copies)`` for every distinct sentence text."""
        yield from self.db.execute(
            "select min(id), count(*) from sentences group by text order by min(id)"
        )


class CommittedHashes:
    """The committed sha256 of documents under one root, asked from a thread that is not the writer's.

    The documents stage asks, from its reader thread, whether a file is indexed as it is. SQLite
    connections belong to one thread, so this one has its own, opened on first use; it reads the
    last commit, which is all that question needs (a run never meets the same path twice, and a
    document committed mid-file still has sha256 '' there).
    """

    def __init__(self, path: Path, root: str) -> None:
        self._path = path
        self._root = root
        self._conn: sqlite3.Connection | None = None

    def sha256(self, relpath: str) -> str | None:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False)
        row = self._conn.execute(
            "select sha256 from documents where root = ? and path = ?", [self._root, relpath]
        ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
