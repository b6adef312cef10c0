"""Checking an index folder file by file and row by row, and rebuilding what its rows still hold.

Opening an index checks only what a search needs and can afford (the manifest, each segment's
header and count, the counts agreeing; see ``kosearch.store.index_store``), so that opening stays
fast. ``check_folder`` reads everything instead, and never trusts one part to describe another:

- ``metadata.sqlite``: SQLite's ``PRAGMA integrity_check`` (every page, every index), then the
  manifest (readable JSON, the required keys, segment names that stay inside the folder);
- each segment file: present, its CRC-32 the one recorded when it was written (segments written
  before checksums have none), readable by FAISS, holding the count and dimension its entry
  records, ids inside its recorded range and unique, vectors finite;
- the union of the segments minus the tombstones against the sentence rows, id by id (a vector
  without a row, a row without a vector, a tombstone of no vector), and the manifest's count;
- the lexical index (when the manifest says the index has one): one FTS5 row per sentence row,
  and FTS5's own ``integrity-check``; each BM25 postings file the manifest's ``lexical_segments``
  names (``kosearch.store.postings``): present, its CRC-32 the recorded one, readable, its unit
  count the recorded one, ids unique; and their units minus the tombstones are the sentence rows;
- documents: sentence rows of no document, finished documents that lack some of their units, and
  documents left unfinished by a killed run (a warning: the next ``kosearch index`` re-does them);
- files a killed run left behind (``segment.*.tmp``, segments no manifest names): a warning, since
  the next writer removes them; judged only when no other process holds the write lock.

``repair_folder`` rebuilds what can be rebuilt from the rows, under the write lock and through a
writer's normal ``checkpoint`` (so the commit checks the same invariant as every commit): rows
whose vectors were lost (a missing, truncated or corrupted segment) are encoded again with the
index's own encoder into a new segment, vectors without rows get tombstones, the lexical postings
are analysed again from the row texts, the BM25 postings files are rebuilt from the FTS5 rows (as
one file, live units only) when they are damaged or a repair forgets tombstones of units they hold,
finished documents that lost units are marked unfinished
(so the next ``kosearch index`` of their folder reads them again), and the manifest's counts are
recounted. SQLite damaged in its indexes only is fixed with ``REINDEX``; SQLite damaged in its
tables, or a manifest that cannot be read, cannot be rebuilt from inside the index: the report
says so, and that the index must be rebuilt from the documents.

The encoder and the lexical analyzer live above the store, so the caller (``kosearch.Index.repair``)
passes them in as two functions, called only when something needs them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kosearch.errors import IndexCorruptError, IndexNotFoundError, KosearchError
from kosearch.results import CheckFinding, CheckReport
from kosearch.store.index_store import (
    METADATA_FILE,
    IndexStore,
    _acquire_write_lock,
    _checked_manifest,
    _release,
)
from kosearch.store.postings import lexical_entries_of, load_checked
from kosearch.store.segments import (
    REMOVABLE_FILE,
    SegmentEntry,
    entries_of,
    file_crc32,
    load_segment,
    with_id_range,
)

Encode = Callable[[list[str]], np.ndarray]
"""Unit texts -> their document vectors, by the index's own encoder."""
Analyze = Callable[[list[str]], list[str]]
"""Unit texts -> their lexical tokens joined by spaces, with the options the manifest records."""
BATCH = 2000
"""Rows read, encoded or analysed at a time while repairing."""
EXAMPLES = 5
"""Ids or names quoted in a finding's message."""


@dataclass
class _Inspection:
    """Everything one check found, with what a repair needs to act on it."""

    folder: Path
    findings: list[CheckFinding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    readable: bool = False
    """SQLite and the manifest could be read: the rest was checked, and a repair can work."""
    reindex: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    bad_segments: list[str] = field(default_factory=list)
    rows_without_vector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vectors_without_row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dangling_tombstones: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    recount: bool = False
    orphan_rows: list[int] = field(default_factory=list)
    lost_documents: list[int] = field(default_factory=list)
    lexical_rebuild: bool = False
    lexical_missing: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lexical_extra: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    postings_rebuild: bool = False
    stale_files: list[str] = field(default_factory=list)

    def add(self, kind: str, severity: str, message: str, repair: str, repairable: bool, file: Path | None = None) -> None:
        self.findings.append(
            CheckFinding(kind, severity, message, repair, repairable, None if file is None else str(file))
        )

    @property
    def needs_store_repair(self) -> bool:
        return bool(
            self.bad_segments or len(self.rows_without_vector) or len(self.vectors_without_row)
            or len(self.dangling_tombstones) or self.recount or self.orphan_rows or self.lost_documents
            or self.lexical_rebuild or len(self.lexical_missing) or len(self.lexical_extra)
            or self.postings_rebuild
        )

    def report(self) -> CheckReport:
        return CheckReport(str(self.folder), list(self.findings), dict(self.counts))


def check_folder(folder: Path) -> CheckReport:
    """Verify every file and row of the index in ``folder`` (read-only; see the module docstring)."""
    folder = Path(folder)
    _require_index(folder)
    return _inspect(folder, writer_active=_writer_active(folder)).report()


def repair_folder(folder: Path, encode: Encode, analyze: Analyze) -> CheckReport:
    """Rebuild what can be rebuilt from the rows (see the module docstring); the report is the check
    that follows the repair, with ``repaired`` saying what was done and ``found_before`` what was found."""
    folder = Path(folder)
    _require_index(folder)
    lock = _acquire_write_lock(folder)  # another writer: a clear KosearchError
    done: list[str] = []
    try:
        before = _inspect(folder, writer_active=False)
        found = before
        if before.reindex:
            _reindex(folder)
            done.append(f"rebuilt SQLite's indexes of {folder / METADATA_FILE} (REINDEX)")
            found = _inspect(folder, writer_active=False)
        if found.readable and found.needs_store_repair:
            lock = _repair_store(found, lock, encode, analyze, done)
        if found.readable:
            for name in _stale_files(folder, _named_files(folder)):
                (folder / name).unlink(missing_ok=True)
                done.append(f"removed {folder / name}, a file no committed manifest names")
        after = _inspect(folder, writer_active=False)
    finally:
        _release(lock)
    return CheckReport(str(folder), after.findings, after.counts, done, before.findings)


# -- inspecting -----------------------------------------------------------------------------------


def _require_index(folder: Path) -> None:
    if not (folder / METADATA_FILE).is_file():
        raise IndexNotFoundError(f"no kosearch index in {folder} (no {METADATA_FILE})")


def _writer_active(folder: Path) -> bool:
    try:
        lock = _acquire_write_lock(folder)
    except KosearchError:
        return True
    _release(lock)
    return False


def _inspect(folder: Path, *, writer_active: bool) -> _Inspection:
    found = _Inspection(folder)
    database = folder / METADATA_FILE
    rebuild = "rebuild the index from the documents: `kosearch index DOCS --index NEW_FOLDER` (records: add them again)"
    try:
        connection = sqlite3.connect(database, timeout=5)
    except sqlite3.Error as error:
        found.add("sqlite", "error", f"{database} cannot be opened ({error})", rebuild, False, database)
        return found
    try:
        try:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as error:
            found.add("sqlite", "error", f"{database} is not a readable SQLite database ({error})", rebuild, False, database)
            return found
        if problems != ["ok"]:
            indexes_only = all(_index_problem(problem) for problem in problems)
            found.reindex = indexes_only
            found.add(
                "sqlite", "error",
                f"{database} fails SQLite's integrity check ({len(problems)} problems, e.g. {'; '.join(problems[:3])})",
                "rebuild SQLite's indexes from its tables (REINDEX)" if indexes_only
                else f"the tables themselves are damaged, which --repair cannot rebuild: {rebuild}",
                indexes_only, database,
            )
            if not indexes_only:
                return found
        try:
            connection.execute("BEGIN")  # one snapshot: a writer committing meanwhile changes nothing here
            _inspect_rows(found, connection, writer_active)
        except sqlite3.DatabaseError as error:
            found.readable = False
            found.add("sqlite", "error", f"{database} cannot be read ({error})", rebuild, False, database)
    finally:
        connection.close()
    if found.readable and "lexical" in found.manifest and not found.lexical_rebuild and not writer_active:
        _check_fts(found)
    return found


def _index_problem(problem: str) -> bool:
    """Whether an ``integrity_check`` line concerns an index only (which ``REINDEX`` rebuilds from its table)."""
    return " from index " in problem or "wrong # of entries in index" in problem or "missing from index" in problem


def _inspect_rows(found: _Inspection, connection: sqlite3.Connection, writer_active: bool) -> None:
    folder, database = found.folder, found.folder / METADATA_FILE
    rebuild = "rebuild the index from the documents: `kosearch index DOCS --index NEW_FOLDER`"
    tables = {row[0] for row in connection.execute("select name from sqlite_master where type in ('table', 'view')")}
    if "manifest" not in tables or "sentences" not in tables or "documents" not in tables:
        found.add(
            "manifest", "error",
            f"{database} holds no finished index (its creation never finished)",
            f"run `kosearch index DOCS --index {folder}` again, which completes it", False, database,
        )
        return
    manifest: dict[str, Any] = {}
    for key, value in connection.execute("select key, value from manifest"):
        try:
            manifest[key] = json.loads(value)
        except (TypeError, ValueError):
            found.add("manifest", "error", f"the manifest value of {key!r} in {database} is not JSON", rebuild, False, database)
            return
    try:
        manifest = _checked_manifest(folder, manifest)
        entries = entries_of(manifest, IndexCorruptError)
    except KosearchError as error:
        found.add("manifest", "error", str(error), rebuild, False, database)
        return
    found.manifest, found.readable = manifest, True

    sentence_ids = _ids(connection, "select id from sentences order by id")
    tombstones = _ids(connection, "select id from tombstones order by id") if "tombstones" in tables else np.zeros(0, np.int64)
    found.counts.update(sentences=len(sentence_ids), tombstones=len(tombstones), segments=len(entries))
    found.counts["documents"] = int(connection.execute("select count(*) from documents").fetchone()[0])

    kind = (manifest.get("vector_store") or {}).get("kind", "faiss")
    if kind == "faiss":
        held = _inspect_segments(found, entries, int(manifest["dimension"]))
        _inspect_vectors(found, held, sentence_ids, tombstones)
    else:
        found.add(
            "vectors", "warning",
            f"the vectors of {folder} are kept in {kind} (see `kosearch info`): this check covers the rows, the "
            f"manifest and the lexical index; {kind} keeps its points consistent itself",
            "nothing to repair here", False,
        )
    if manifest["sentences"] != len(sentence_ids):
        found.recount = True
        found.add(
            "manifest", "error",
            f"the manifest of {database} counts {manifest['sentences']} sentences, the table holds {len(sentence_ids)}",
            "recount the manifest", True, database,
        )
    if "lexical" in manifest:
        _inspect_lexical(found, connection, sentence_ids, tables)
        _inspect_postings(found, manifest, sentence_ids, tombstones)
    _inspect_documents(found, connection)
    if writer_active:
        found.add(
            "lock", "warning",
            f"another process is writing {folder}; the files it is writing were not judged",
            "check again when it has finished", False,
        )
    else:
        named = {name for entry in entries for name in entry.files()} | _postings_files(manifest)
        found.stale_files = _stale_files(folder, named)
        for name in found.stale_files:
            found.add(
                "stale_file", "warning",
                f"{folder / name} is named by no committed manifest (left by a killed or failed run)",
                "remove it (the next writer would too)", True, folder / name,
            )


def _ids(connection: sqlite3.Connection, sql: str) -> np.ndarray:
    return np.fromiter((row[0] for row in connection.execute(sql)), dtype=np.int64)


def _inspect_segments(found: _Inspection, entries: list[SegmentEntry], dimension: int) -> list[np.ndarray]:
    """The ids of each readable segment; the unreadable ones go to ``found.bad_segments``."""
    folder = found.folder
    reencode = "encode its rows again with the index's encoder, into a new segment"
    held: list[np.ndarray] = []
    seen = np.zeros(0, np.int64)
    for entry in entries:
        path = folder / entry.file
        problem = None
        if not path.is_file():
            problem = f"{path} is missing (the manifest lists segment {entry.name} with {entry.count} vectors)"
        else:
            try:
                vectors = load_segment(folder, entry, "cpu", None)
            except IndexCorruptError as error:
                problem = str(error)
            else:
                problem = _segment_problem(path, with_id_range(entry, vectors), vectors, dimension, seen)
        if problem is not None:
            found.bad_segments.append(entry.name)
            found.add("segment", "error", problem, reencode, True, path)
            continue
        if entry.crc32 is None:
            found.add(
                "segment", "warning",
                f"{path} records no checksum (written before kosearch recorded them): its structure, ids and "
                "numbers look right, but damage inside its vectors cannot be detected",
                "run `kosearch compact` to rewrite it with one", False, path,
            )
        ids = vectors.ids()
        seen = np.union1d(seen, ids)
        held.append(ids)
    found.counts["segments_unreadable"] = len(found.bad_segments)
    return held


def _segment_problem(path: Path, entry: SegmentEntry, vectors, dimension: int, seen: np.ndarray) -> str | None:
    if entry.crc32 is not None and file_crc32(path) != entry.crc32:
        return f"{path} has changed since it was written (its CRC-32 is not the one its entry records): its bytes are damaged"
    if vectors.dimension != dimension:
        return f"{path} holds {vectors.dimension}-dimensional vectors, the manifest says {dimension}"
    ids = vectors.ids()
    if len(ids) == 0:
        return None
    if len(np.unique(ids)) != len(ids):
        return f"{path} holds some vector ids twice"
    if ids.min() < entry.min_id or ids.max() > entry.max_id:
        return f"{path} holds ids {ids.min()}..{ids.max()}, outside the range {entry.min_id}..{entry.max_id} its entry records"
    twice = np.intersect1d(ids, seen)
    if len(twice):
        return f"{path} holds ids that an earlier segment holds too (e.g. {_some(twice)})"
    try:
        for _, batch in vectors.iter_vectors():
            if not np.isfinite(batch).all():
                return f"{path} holds vectors that are not finite numbers (NaN or infinity): its bytes are damaged"
    except RuntimeError:
        pass  # an approximate index that cannot give its vectors back: its header and count were read
    return None


def _inspect_vectors(found: _Inspection, held: list[np.ndarray], sentence_ids: np.ndarray, tombstones: np.ndarray) -> None:
    database = found.folder / METADATA_FILE
    every = np.unique(np.concatenate(held)) if held else np.zeros(0, np.int64)
    live = np.setdiff1d(every, tombstones)
    found.counts["vectors"] = len(live)
    found.rows_without_vector = np.setdiff1d(sentence_ids, live)
    found.vectors_without_row = np.setdiff1d(live, sentence_ids)
    found.dangling_tombstones = np.setdiff1d(tombstones, every)
    lost = len(found.rows_without_vector)
    if lost and not found.bad_segments:
        found.add(
            "vectors", "error",
            f"{lost} sentence rows have no vector in any segment (ids {_some(found.rows_without_vector)})",
            "encode those rows again with the index's encoder, into a new segment", True, database,
        )
    elif lost:
        found.counts["rows_to_reencode"] = lost
    if len(found.vectors_without_row):
        found.add(
            "vectors", "error",
            f"{len(found.vectors_without_row)} vectors have no sentence row and no tombstone "
            f"(ids {_some(found.vectors_without_row)}): a search could return them",
            "record them as deleted (tombstones)", True, database,
        )
    if len(found.dangling_tombstones) and not found.bad_segments:
        found.add(
            "vectors", "error",
            f"{len(found.dangling_tombstones)} tombstones name no vector of any segment "
            f"(ids {_some(found.dangling_tombstones)}), so the counts disagree",
            "delete those tombstones", True, database,
        )


def _inspect_lexical(found: _Inspection, connection: sqlite3.Connection, sentence_ids: np.ndarray, tables: set[str]) -> None:
    database = found.folder / METADATA_FILE
    if "lexical" not in tables:
        found.lexical_rebuild = True
        found.add(
            "lexical", "error", f"{database} has no lexical table, though the manifest records its options",
            "analyse every row's text again into a new lexical index", True, database,
        )
        return
    postings = _ids(connection, "select rowid from lexical order by rowid")
    found.counts["lexical_rows"] = len(postings)
    found.lexical_missing = np.setdiff1d(sentence_ids, postings)
    found.lexical_extra = np.setdiff1d(postings, sentence_ids)
    if len(found.lexical_missing) or len(found.lexical_extra):
        found.add(
            "lexical", "error",
            f"the lexical index has {len(postings)} rows for {len(sentence_ids)} sentence rows "
            f"({len(found.lexical_missing)} rows without postings, {len(found.lexical_extra)} postings of no row)",
            "analyse the missing rows' texts again and delete the postings of no row", True, database,
        )


def _inspect_postings(found: _Inspection, manifest: dict[str, Any], sentence_ids: np.ndarray, tombstones: np.ndarray) -> None:
    """The BM25 postings files against their entries and against the rows (see the module docstring)."""
    folder = found.folder
    rebuild = "rebuild the postings files from the lexical rows (FTS5)"
    try:
        entries = lexical_entries_of(manifest, IndexCorruptError)
    except IndexCorruptError as error:
        found.postings_rebuild = True
        found.add("postings", "error", str(error), rebuild, True, folder / METADATA_FILE)
        return
    if entries is None:
        return  # made before postings files: the next writer writes them (readers build them in memory)
    held: list[np.ndarray] = []
    for entry in entries:
        path = folder / entry.file
        problem = None
        if not path.is_file():
            problem = f"{path} is missing (the manifest lists postings of {entry.count} units)"
        elif entry.crc32 is not None and file_crc32(path) != entry.crc32:
            problem = f"{path} has changed since it was written (its CRC-32 is not the one its entry records): its bytes are damaged"
        else:
            try:
                segment = load_checked(folder, entry)
                ids = np.asarray(segment.ids)
                if len(ids) > 1 and not bool((ids[1:] > ids[:-1]).all()):
                    problem = f"{path} holds unit ids out of order or twice"
                else:
                    held.append(np.array(ids))
            except IndexCorruptError as error:
                problem = str(error)
        if problem is not None:
            found.postings_rebuild = True
            found.add("postings", "error", problem, rebuild, True, path)
    if found.postings_rebuild:
        return
    every = np.concatenate(held) if held else np.zeros(0, np.int64)
    # Units whose vector lost its row get a tombstone from the vectors' repair, which settles them here too.
    live = np.setdiff1d(np.setdiff1d(every, tombstones), found.vectors_without_row)
    if len(np.unique(every)) != len(every) or not np.array_equal(live, sentence_ids):
        found.postings_rebuild = True
        found.add(
            "postings", "error",
            f"the postings files hold {len(live)} live units for {len(sentence_ids)} sentence rows "
            f"({len(np.setdiff1d(sentence_ids, live))} rows without postings, {len(np.setdiff1d(live, sentence_ids))} of no row)",
            rebuild, True, folder / METADATA_FILE,
        )


def _check_fts(found: _Inspection) -> None:
    """FTS5's own check of its index against its content (a write statement that writes nothing)."""
    database = found.folder / METADATA_FILE
    try:
        connection = sqlite3.connect(database, timeout=5)
        try:
            connection.execute("insert into lexical(lexical, rank) values ('integrity-check', 1)")
            connection.rollback()
        finally:
            connection.close()
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return
        problem = str(error)
    except sqlite3.DatabaseError as error:
        problem = str(error)
    else:
        return
    found.lexical_rebuild = True
    found.add(
        "lexical", "error", f"the lexical index (FTS5) in {database} fails its integrity check ({problem})",
        "analyse every row's text again into a new lexical index", True, database,
    )


def _inspect_documents(found: _Inspection, connection: sqlite3.Connection) -> None:
    database, folder = found.folder / METADATA_FILE, found.folder
    found.orphan_rows = [
        row[0] for row in connection.execute(
            "select id from sentences where document_id not in (select id from documents) order by id"
        )
    ]
    if found.orphan_rows:
        found.add(
            "documents", "error",
            f"{len(found.orphan_rows)} sentence rows belong to no document (ids {_some(found.orphan_rows)})",
            "delete those rows and record their vectors as deleted", True, database,
        )
    rows = connection.execute(
        "select d.id, d.root, d.path, d.record_id, d.sha256, d.sentences, count(s.id) from documents d "
        "left join sentences s on s.document_id = d.id group by d.id order by d.id"
    ).fetchall()
    unfinished = [row for row in rows if row[4] == ""]
    short = [row for row in rows if row[4] != "" and row[5] is not None and row[6] != row[5]]
    if unfinished:
        roots = sorted({row[1] for row in unfinished if row[1]})
        found.add(
            "documents", "warning",
            f"{len(unfinished)} documents were cut short by an interrupted run (e.g. {unfinished[0][2]}, "
            f"{unfinished[0][6]} of {unfinished[0][5]} units); searches find the part that is in",
            "nothing to repair here: " + (
                "; ".join(f"`kosearch index {root} --index {folder}`" for root in roots[:3]) if roots
                else "run the same `kosearch index` again"
            ) + " reads them again", False, database,
        )
    files = [row for row in short if row[3] is None]
    records = [row for row in short if row[3] is not None]
    if files:
        found.lost_documents = [row[0] for row in files]
        found.add(
            "documents", "error",
            f"{len(files)} indexed files lack some of their units (e.g. {files[0][2]}: {files[0][6]} of {files[0][5]})",
            "mark them unfinished, so the next `kosearch index` of their folder reads them again", True, database,
        )
    if records:
        found.add(
            "documents", "error",
            f"{len(records)} records lack some of their units (e.g. {records[0][3]!r}: {records[0][6]} of {records[0][5]})",
            "add them again with upsert_texts (their text is the caller's)", False, database,
        )


def _named_files(folder: Path) -> set[str]:
    connection = sqlite3.connect(folder / METADATA_FILE, timeout=5)
    try:
        manifest = {key: json.loads(value) for key, value in connection.execute("select key, value from manifest")}
    finally:
        connection.close()
    return {name for entry in entries_of(manifest, IndexCorruptError) for name in entry.files()} | _postings_files(manifest)


def _postings_files(manifest: dict[str, Any]) -> set[str]:
    try:
        return {entry.file for entry in lexical_entries_of(manifest, IndexCorruptError) or []}
    except IndexCorruptError:
        return set()


def _stale_files(folder: Path, named: set[str]) -> list[str]:
    return sorted(name for name in os.listdir(folder) if REMOVABLE_FILE.fullmatch(name) and name not in named)


def _some(ids) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:EXAMPLES])
    return shown + (", ..." if len(ids) > EXAMPLES else "")


# -- repairing ------------------------------------------------------------------------------------


def _reindex(folder: Path) -> None:
    connection = sqlite3.connect(folder / METADATA_FILE, timeout=5)
    try:
        connection.execute("REINDEX")
        connection.commit()
    finally:
        connection.close()


def _repair_store(found: _Inspection, lock, encode: Encode, analyze: Analyze, done: list[str]):
    """Restore the invariant through a writer and its ``checkpoint``; returns the lock, still held."""
    folder = found.folder
    # Postings files are rebuilt when damaged, and by the writer when a forgotten tombstone is of a
    # unit they hold (``forget_tombstones``); repaired FTS5 rows leave sound postings files as they are.
    store = IndexStore.open_to_repair(folder, lock, found.bad_segments, rebuild_postings=found.postings_rebuild)
    try:
        metadata = store.metadata
        store._writing()  # opens the writer's transaction, which the checkpoint commits
        if found.orphan_rows:
            _delete_rows(metadata, found.orphan_rows)
            done.append(f"deleted {len(found.orphan_rows)} sentence rows that belonged to no document")
        with_vectors = np.setdiff1d(np.asarray(found.orphan_rows, np.int64), found.rows_without_vector)
        doomed = np.union1d(found.vectors_without_row, with_vectors)
        if len(doomed):
            store.remove_vectors(doomed)
            done.append(f"recorded {len(doomed)} vectors without a row as deleted")
        if len(found.dangling_tombstones):
            store.forget_tombstones(found.dangling_tombstones)
            done.append(f"deleted {len(found.dangling_tombstones)} tombstones of vectors no readable segment holds")
        missing = np.setdiff1d(found.rows_without_vector, np.asarray(found.orphan_rows, np.int64))
        if len(missing):
            for ids, texts in _texts(metadata, missing):
                store.add_vectors(ids, encode(texts))
            names = ", ".join(found.bad_segments) or "no segment"
            done.append(f"encoded {len(missing)} rows again with the index's encoder (their vectors were in {names})")
        for document_id in found.lost_documents:
            store.complete_document(document_id, "")
        if found.lost_documents:
            done.append(f"marked {len(found.lost_documents)} files that lost units unfinished: the next `kosearch index` of their folder reads them again")
        if "lexical" in found.manifest:
            _repair_lexical(store, metadata, found, analyze, done)
        store.checkpoint()
        if found.recount:
            done.append("recounted the manifest's sentences")
        if found.bad_segments:
            done.append(f"dropped the unreadable segments {', '.join(found.bad_segments)} from the manifest")
        if found.postings_rebuild:
            done.append("rebuilt the BM25 postings files from the lexical rows")
        done.append(f"committed generation {store.generation} (checked: vectors = rows = postings)")
    finally:
        store._lock_handle = None  # the lock is the caller's: it checks again under it, then releases it
        store.close()
    return lock


def _texts(metadata, ids: np.ndarray):
    """``(ids, texts)`` of sentence rows, in batches."""
    for start in range(0, len(ids), BATCH):
        chunk = [int(i) for i in ids[start : start + BATCH]]
        marks = ",".join("?" * len(chunk))
        rows = metadata.db.execute(f"select id, text from sentences where id in ({marks}) order by id", chunk).fetchall()
        yield np.asarray([row[0] for row in rows], np.int64), [row[1] for row in rows]


def _delete_rows(metadata, ids: list[int]) -> None:
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        marks = ",".join("?" * len(chunk))
        if metadata.has_lexical_table():
            metadata.db.execute(f"delete from lexical where rowid in ({marks})", chunk)
        metadata.db.execute(f"delete from sentences where id in ({marks})", chunk)


def _repair_lexical(store: IndexStore, metadata, found: _Inspection, analyze: Analyze, done: list[str]) -> None:
    if found.lexical_rebuild:
        if metadata.has_lexical_table():
            metadata.db.execute("drop table lexical")
        metadata.db.execute("create virtual table lexical using fts5(tokens, tokenize='unicode61 remove_diacritics 0')")
        every = np.fromiter((row[0] for row in metadata.db.execute("select id from sentences order by id")), np.int64)
        for ids, texts in _texts(metadata, every):
            store.add_lexical(ids.tolist(), analyze(texts))
        done.append(f"analysed the texts of all {len(every)} rows again into a new lexical index")
        return
    extra = [int(i) for i in found.lexical_extra]
    for start in range(0, len(extra), BATCH):
        chunk = extra[start : start + BATCH]
        metadata.db.execute(f"delete from lexical where rowid in ({','.join('?' * len(chunk))})", chunk)
    missing = np.setdiff1d(found.lexical_missing, np.asarray(found.orphan_rows, np.int64))
    for ids, texts in _texts(metadata, missing):
        store.add_lexical(ids.tolist(), analyze(texts))
    if len(extra) or len(missing):
        done.append(f"analysed {len(missing)} rows again into the lexical index and deleted {len(extra)} postings of no row")
