"""The SQLite side of an index: documents, sentences, skipped files and the manifest.

SQLite is the index's source of truth. A sentence's row id is also its FAISS id, and the manifest
names the one FAISS file that matches the committed rows, so a single SQLite transaction is what
moves an index from one consistent state to the next (see ``kosearch.store.index_store``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from kosearch.documents.types import SkippedFile
from kosearch.results import IndexedSentence

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class StoredDocument:
    id: int
    root: str
    path: str
    sha256: str


class MetadataStore:
    """Typed access to ``metadata.sqlite``; every write goes through ``transaction()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite_utils.Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._ensure_schema()

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        """A context manager: everything inside commits together or not at all."""
        return self.db.atomic()

    def _ensure_schema(self) -> None:
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
                    },
                    pk="id",
                )
                self.db["documents"].create_index(["root", "path"], unique=True)
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
                    },
                    pk="id",
                    foreign_keys=[("document_id", "documents", "id")],
                )
                self.db["sentences"].create_index(["document_id", "position"], unique=True)
                self.db["sentences"].create_index(["text"])
            elif "page" not in self.db["sentences"].columns_dict:
                # Indexes made before PDF support: the column is nullable, so old rows just have no page.
                self.db.execute("alter table sentences add column page integer")
            if "skipped" not in self.db.table_names():
                self.db["skipped"].create(
                    {"root": str, "path": str, "reason": str, "seen_at": str}, pk=("root", "path")
                )

    # -- manifest -------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        return {row["key"]: json.loads(row["value"]) for row in self.db["manifest"].rows}

    def set_manifest(self, values: dict[str, Any]) -> None:
        self.db["manifest"].upsert_all(
            [{"key": key, "value": json.dumps(value, ensure_ascii=False)} for key, value in values.items()],
            pk="key",
        )

    # -- documents ------------------------------------------------------------------------------

    def documents_under(self, root: str) -> dict[str, StoredDocument]:
        rows = self.db.execute(
            "select id, root, path, sha256 from documents where root = ?", [root]
        ).fetchall()
        return {row[2]: StoredDocument(*row) for row in rows}

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

    def delete_documents(self, document_ids: Sequence[int]) -> None:
        for chunk in _chunks(list(document_ids), 500):
            marks = ",".join("?" * len(chunk))
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
        return [row[0] for row in self.db.execute("select distinct root from documents order by root")]

    def skipped(self) -> list[SkippedFile]:
        return [
            SkippedFile(path=str(Path(row[0]) / row[1]), reason=row[2])
            for row in self.db.execute("select root, path, reason from skipped order by root, path")
        ]

    def sentences_by_id(self, ids: Iterable[int]) -> dict[int, IndexedSentence]:
        wanted = sorted({int(i) for i in ids if i >= 0})
        found: dict[int, IndexedSentence] = {}
        for chunk in _chunks(wanted, 900):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "select s.id, s.text, d.path, s.line, s.start, s.end, d.root, s.page "
                f"from sentences s join documents d on d.id = s.document_id where s.id in ({marks})",
                chunk,
            ):
                found[row[0]] = IndexedSentence(*row)
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

    def duplicate_groups(self) -> Iterator[tuple[int, int]]:
        """Yield ``(representative_id, copies)`` for every distinct sentence text."""
        yield from self.db.execute(
            "select min(id), count(*) from sentences group by text order by min(id)"
        )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
