"""Writes an index folder exactly as kosearch wrote it at the end of turn one (commit 91b034c).

That layout predates segments, tombstones, the lexical index and records: ``metadata.sqlite``
(schema version 1, created by sqlite_utils with the tables below, WAL) and one FAISS file,
``vectors.NNNNNN.faiss`` (an ``IDMap2,Flat`` inner-product index whose ids are the sentence row
ids), named by the manifest's ``vectors_file``; older generations' files were deleted after each
commit. The SQL below is what 91b034c's ``MetadataStore._ensure_schema`` produced, copied from
``sqlite_master`` of an index that version built; ``test_segments.py`` checks it against that
version's own output when the git history is available.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import faiss
import numpy as np

TURN_ONE_COMMIT = "91b034c"

TURN_ONE_SCHEMA = [
    'CREATE TABLE "manifest" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)',
    'CREATE TABLE "documents" (\n   "id" INTEGER PRIMARY KEY,\n   "root" TEXT,\n   "path" TEXT,\n'
    '   "sha256" TEXT,\n   "size" INTEGER,\n   "encoding" TEXT,\n   "format" TEXT,\n'
    '   "sentences" INTEGER,\n   "indexed_at" TEXT\n)',
    'CREATE UNIQUE INDEX "idx_documents_root_path"\n    ON "documents" ("root", "path")',
    'CREATE TABLE "sentences" (\n   "id" INTEGER PRIMARY KEY,\n   "document_id" INTEGER REFERENCES '
    '"documents"("id"),\n   "position" INTEGER,\n   "text" TEXT,\n   "line" INTEGER,\n   "start" INTEGER,\n'
    '   "end" INTEGER\n)',
    'CREATE UNIQUE INDEX "idx_sentences_document_id_position"\n    ON "sentences" ("document_id", "position")',
    'CREATE INDEX "idx_sentences_text"\n    ON "sentences" ("text")',
    'CREATE TABLE "skipped" (\n   "root" TEXT,\n   "path" TEXT,\n   "reason" TEXT,\n   "seen_at" TEXT,\n'
    '   PRIMARY KEY ("root", "path")\n)',
]

TURN_ONE_MANIFEST_KEYS = {
    "model", "fingerprint", "dimension", "prompts", "faiss_factory", "vectors_file", "generation",
    "sentences", "next_sentence_id", "kosearch_version", "schema_version", "created", "updated",
}


def write_turn_one_index(folder: Path, root: Path, files: dict[str, list[str]], encoder, generation: int = 3) -> Path:
    """An index of ``files`` (relative path -> its sentences, one per line) under ``root``, in the
    turn-one layout, with ``encoder``'s document vectors; returns the folder."""
    folder.mkdir(parents=True)
    connection = sqlite3.connect(folder / "metadata.sqlite")
    connection.execute("PRAGMA journal_mode=WAL")
    stamp = "2026-11-23T15:00:00+00:00"
    with connection:
        for statement in TURN_ONE_SCHEMA:
            connection.execute(statement)
        sentence_id, texts, ids = 1, [], []
        for document_id, (path, sentences) in enumerate(sorted(files.items()), start=1):
            body = "".join(f"{sentence}\n" for sentence in sentences).encode()
            connection.execute(
                "insert into documents values (?, ?, ?, ?, ?, 'utf-8', ?, ?, ?)",
                [document_id, str(root), path, hashlib.sha256(body).hexdigest(), len(body),
                 path.rsplit(".", 1)[-1], len(sentences), stamp],
            )
            offset = 0
            for position, sentence in enumerate(sentences):
                connection.execute(
                    "insert into sentences values (?, ?, ?, ?, ?, ?, ?)",
                    [sentence_id, document_id, position, sentence, position + 1, offset, offset + len(sentence)],
                )
                offset += len(sentence) + 1
                texts.append(sentence)
                ids.append(sentence_id)
                sentence_id += 1
        vectors_file = f"vectors.{generation:06d}.faiss"
        manifest = {
            "model": encoder.name, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension,
            "prompts": encoder.prompts, "faiss_factory": "Flat", "vectors_file": vectors_file,
            "generation": generation, "sentences": len(ids), "next_sentence_id": sentence_id,
            "kosearch_version": "0.1.0", "schema_version": 1, "created": stamp, "updated": stamp,
        }
        connection.executemany(
            "insert into manifest values (?, ?)",
            [(key, json.dumps(value, ensure_ascii=False)) for key, value in manifest.items()],
        )
    connection.close()
    index = faiss.index_factory(encoder.dimension, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    index.add_with_ids(encoder.encode_documents(texts), np.asarray(ids, dtype=np.int64))
    faiss.write_index(index, str(folder / vectors_file))
    (folder / "write.lock").touch()
    return folder
