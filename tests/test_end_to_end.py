"""Every user-facing path through the real bundled encoder, on the bundled sample corpus.

These are the README's promises: index corpora/sample, query it (one-shot, JSON, interactive),
mine paraphrases, reopen, refuse the wrong encoder, find the CP949 file by a Korean query, skip
bad files, and survive a killed run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kosearch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"
NSMC = ROOT.parent / "shared" / "data" / "nsmc" / "nsmc_reviews.tsv.gz"


def kosearch_cli(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real console entry point in a child process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "kosearch", *args],
        cwd=ROOT,
        input=input,
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
    )


def test_cli_one_shot_json_query_finds_the_cheetah(sample_index):
    result = kosearch_cli("query", str(sample_index), "치타가 먹이를 쫓는다", "-k", "5", "--json")
    answer = json.loads(result.stdout)
    assert answer["query"] == "치타가 먹이를 쫓는다"
    assert len(answer["hits"]) == 5
    assert "치타" in answer["hits"][0]["text"]
    assert answer["hits"][0]["score"] > 0.85
    assert answer["hits"][0]["path"] and answer["hits"][0]["line"] >= 1


def test_cli_interactive_loop_answers_until_an_empty_line(sample_index):
    result = kosearch_cli("query", str(sample_index), "-k", "2", "--json", input="수치 해석 프로그램\n버스 노선 변경\n\n무시됨\n")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [line["query"] for line in lines] == ["수치 해석 프로그램", "버스 노선 변경"]
    assert "수치" in lines[0]["hits"][0]["text"] or "해석" in lines[0]["hits"][0]["text"]


def test_cli_human_output_info_and_paraphrases(sample_index):
    table = kosearch_cli("query", str(sample_index), "치타가 먹이를 쫓는다", "-k", "3", "--context", "1").stdout
    assert "치타" in table and "score" in table
    info = json.loads(kosearch_cli("info", str(sample_index), "--json").stdout)
    assert info["sentences"] >= 300 and info["documents"] >= 5 and info["dimension"] == 384
    assert info["model"] == kosearch.Index.open(sample_index).info().model
    pairs = json.loads(kosearch_cli("paraphrases", str(sample_index), "--top", "20", "--json").stdout)
    assert len(pairs) == 20
    assert all(pair["a"]["text"] != pair["b"]["text"] for pair in pairs)
    assert pairs[0]["score"] >= pairs[-1]["score"] > 0.8


def test_planted_paraphrases_are_mined(sample_index):
    planted = _planted_pairs()
    with kosearch.Index.open(sample_index) as idx:
        mined = {frozenset((p.a.text, p.b.text)) for p in idx.paraphrases(top=60)}
    found = [pair for pair in planted if pair in mined]
    assert len(found) >= 0.6 * len(planted), f"only {len(found)} of {len(planted)} planted pairs in the top 60"


def _planted_pairs() -> list[frozenset[str]]:
    """The corpus README lists its planted pairs as table rows: | sentence A | sentence B |."""
    pairs = []
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Planted paraphrase pairs", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] and not set(cells[0]) <= set("-: ") and cells[0] not in ("A", "sentence A"):
            pairs.append(frozenset(cells[:2]))
    assert pairs, "corpora/sample/README.md lists no planted pairs"
    return pairs


def test_python_api_reopen_search_and_cp949_document(sample_index):
    with kosearch.Index.open(sample_index) as idx:
        hits = idx.search("수치 해석 프로그램", k=5)
        assert len(hits) == 5 and all(isinstance(h, kosearch.Hit) for h in hits)
        cp949_docs = [
            row for row in idx.store.metadata.db.execute("select path, encoding from documents")
            if row[1] == "cp949"
        ]
        assert len(cp949_docs) == 1, "the sample corpus has exactly one CP949 file"
        cp949_path = cp949_docs[0][0]
        sentences = [
            row[0]
            for row in idx.store.metadata.db.execute(
                "select s.text from sentences s join documents d on d.id = s.document_id where d.path = ?",
                [cp949_path],
            )
        ]
        assert sentences and all("\ufffd" not in s for s in sentences)
        # Querying with the words of one of its sentences, paraphrased, finds that file.
        probe = sentences[len(sentences) // 2]
        assert any(h.path == cp949_path for h in idx.search(probe, k=3))


def test_wrong_encoder_is_refused(sample_index, tiny_model_folder):
    result = kosearch_cli("query", str(sample_index), "치타", "--model", str(tiny_model_folder), check=False)
    assert result.returncode == 1
    needed = kosearch.Index.open(sample_index).info().model
    assert needed in result.stderr and "was built with" in result.stderr


def test_bad_files_are_skipped_and_reported(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE / "공공", docs)  # a few good files beside the bad ones (sample_index covers them all)
    (docs / "broken.txt").write_bytes(b"\x00\x00binary\x00" * 100)
    (docs / "empty.md").write_bytes(b"")
    result = kosearch_cli("index", str(docs), "--index", str(tmp_path / "idx"), "--json")
    report = json.loads(result.stdout)
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) >= {"broken.txt", "empty.md"}
    info = json.loads(kosearch_cli("info", str(tmp_path / "idx"), "--json").stdout)
    assert {Path(s["path"]).name for s in info["skipped"]} >= {"broken.txt", "empty.md"}


def test_missing_index_is_a_clear_error(tmp_path):
    result = kosearch_cli("query", str(tmp_path / "nope"), "치타", check=False)
    assert result.returncode == 1 and "no kosearch index" in result.stderr


@pytest.mark.skipif(not NSMC.exists(), reason="needs ../shared/data/nsmc")
def test_killed_real_run_leaves_a_consistent_index(tmp_path):
    import gzip
    import sqlite3

    docs = tmp_path / "reviews"
    docs.mkdir()
    with gzip.open(NSMC, "rt", encoding="utf-8") as handle:
        next(handle)
        reviews = [next(handle).rstrip("\n").split("\t")[-1] for _ in range(3000)]
    for number in range(30):
        (docs / f"part{number:02d}.txt").write_text("\n".join(reviews[number * 100 : (number + 1) * 100]), encoding="utf-8")
    index = tmp_path / "idx"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, kosearch\n"
         "with kosearch.Index.open_or_create(sys.argv[1]) as idx:\n"
         "    idx.add_folder(sys.argv[2], checkpoint_sentences=100, unit=\"sentence\")\n",
         str(index), str(docs)],
        cwd=ROOT,
    )

    def generation() -> int:
        try:
            with sqlite3.connect(index / "metadata.sqlite", timeout=5) as db:
                return int(db.execute("select value from manifest where key='generation'").fetchone()[0])
        except (sqlite3.Error, TypeError):
            return -1

    deadline = time.monotonic() + 400
    while generation() < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert child.poll() is None, "finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with kosearch.Index.open(index) as idx:
        info = idx.info()
        assert 0 < info.sentences == len(idx)
        assert info.documents < 30
        assert idx.search(reviews[0], k=1)[0].score > 0.9


def test_paraphrases_through_the_index_own_hnsw_segment_with_the_real_encoder(sample_index, tmp_path, monkeypatch):
    """The bundled encoder's vectors, compacted into an HNSW segment (break-even lowered to fit the
    sample corpus): mining searches that segment at the mining depth (then the top pairs' texts at its
    tuned depth), agrees with sentence-transformers' exact top pairs, still finds the planted pairs, and never returns a removed file's sentences."""
    import numpy as np
    import torch
    from sentence_transformers import util

    from kosearch.store import ann
    from kosearch.store.pair_mining import MINING_EF_SEARCH

    folder = tmp_path / "sample"
    shutil.copytree(sample_index, folder)
    monkeypatch.setattr(ann, "BREAK_EVEN", 100)
    with kosearch.Index.open(folder, writable=True) as idx:
        idx.compact()
        assert [entry.factory for entry in idx.store.segment_entries()] == [ann.ANN_FACTORY]
        monkeypatch.setattr(ann, "build_index", _fail_if_called)
        depths = []
        original = idx.store.dense_search
        monkeypatch.setattr(idx.store, "dense_search",
                            lambda *a, **k: depths.append(k.get("ef_search")) or original(*a, **k))

        def exact_top(top: int) -> set[tuple[int, int]]:
            representatives = np.array([rep for rep, _ in idx.store.duplicate_groups()], dtype=np.int64)
            batches = [(ids[np.isin(ids, representatives)], vectors[np.isin(ids, representatives)])
                       for ids, vectors in idx.store.iter_vectors()]
            ids = np.concatenate([b[0] for b in batches])
            vectors = torch.from_numpy(np.concatenate([b[1] for b in batches]))
            return {(min(ids[i], ids[j]), max(ids[i], ids[j]))
                    for _, i, j in util.paraphrase_mining_embeddings(vectors, top_k=10, max_pairs=top)}

        pairs = idx.paraphrases(top=60)
        assert depths[0] == MINING_EF_SEARCH and set(depths) == {MINING_EF_SEARCH, None}  # shallow, then refining
        truth = exact_top(60)
        assert len({(p.a.sentence_id, p.b.sentence_id) for p in pairs} & truth) / len(truth) >= 0.95
        planted = _planted_pairs()
        mined = {frozenset((p.a.text, p.b.text)) for p in pairs}
        assert sum(pair in mined for pair in planted) >= 0.6 * len(planted)

        removed = pairs[0].a.path
        idx.remove([removed])
        assert idx.store.deleted_count() > 0
        after = idx.paraphrases(top=60)
        assert removed not in {p.a.path for p in after} | {p.b.path for p in after}
        truth = exact_top(60)
        assert len({(p.a.sentence_id, p.b.sentence_id) for p in after} & truth) / len(truth) >= 0.95


def _fail_if_called(*args, **kwargs):
    raise AssertionError("mining built a second graph instead of searching the index's own segment")
