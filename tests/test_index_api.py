"""The Index facade end to end with a mock encoder: ingest, update, search, refuse, survive a kill."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import kosearch
from kosearch.errors import EncoderMismatchError
from kosearch_testing import HashingEncoder

TESTS = Path(__file__).resolve().parent


def _write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "animals.txt").write_text(
        "치타는 가장 빠른 육상 동물이다. 치타가 먹이를 쫓는다.\n사자는 무리를 지어 사냥한다.\n", encoding="utf-8"
    )
    (folder / "code.md").write_text("# 수치 해석\n\n수치 해석 프로그램은 행렬을 푼다.\n", encoding="utf-8")
    (folder / "notice.txt").write_bytes("도서관은 월요일에 휴관합니다.\n".encode("cp949"))
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 50)
    return folder


@pytest.fixture
def corpus(tmp_path) -> Path:
    return _write_corpus(tmp_path / "docs")


def test_index_search_reopen(tmp_path, corpus):
    encoder = HashingEncoder()
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        report = idx.add_folder(corpus, unit="sentence")
        assert report.files_added == 3
        assert {Path(s.path).name for s in report.skipped} == {"empty.txt", "binary.txt"}
        assert all(s.reason for s in report.skipped)
        assert len(idx) == report.sentences_added >= 5
    with kosearch.Index.open(tmp_path / "idx", encoder) as idx:
        hits = idx.search("치타가 먹이를 쫓는다", k=3, context=1)
        assert hits[0].text == "치타가 먹이를 쫓는다."
        assert hits[0].path == "animals.txt" and hits[0].line == 1
        assert hits[0].context_before == ("치타는 가장 빠른 육상 동물이다.",)
        assert hits[0].context_after == ("사자는 무리를 지어 사냥한다.",)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        notice = idx.search("도서관 휴관", k=1)[0]
        assert notice.path == "notice.txt" and "휴관" in notice.text
        info = idx.info()
        assert info.documents == 3 and info.sentences == len(idx)
        assert info.model == encoder.name and info.dimension == encoder.dimension
        assert len(info.skipped) == 2
        batch = idx.search_batch(["사자", "행렬"], k=2)
        assert len(batch) == 2 and all(len(hits) == 2 for hits in batch)


def test_update_reencodes_only_what_changed(tmp_path, corpus):
    encoder = HashingEncoder()
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(corpus, unit="sentence")
        before = len(idx)
        encoder.calls.clear()
        report = idx.add_folder(corpus)
        assert (report.files_unchanged, report.files_added, report.sentences_added) == (3, 0, 0)
        assert encoder.calls == []
        (corpus / "animals.txt").write_text("치타가 달린다.\n", encoding="utf-8")
        (corpus / "code.md").unlink()
        (corpus / "new.txt").write_text("새 문서가 추가되었다.\n", encoding="utf-8")
        report = idx.add_folder(corpus)
        assert (report.files_updated, report.files_removed, report.files_added) == (1, 1, 1)
        assert sum(encoder.calls) == 2
        assert len(idx) == before - 3 - 2 + 2
        assert {h.text for h in idx.search("치타", k=10)} >= {"치타가 달린다."}
        assert "수치 해석 프로그램은 행렬을 푼다." not in {h.text for h in idx.search("행렬", k=10)}


def test_wrong_encoder_is_refused_with_the_needed_name(tmp_path, corpus):
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(corpus)
    other = HashingEncoder(dimension=32, name="test/other-model")
    with pytest.raises(EncoderMismatchError) as refused:
        kosearch.Index.open(tmp_path / "idx", other)
    assert "test/hashing-bigrams" in str(refused.value) and "test/other-model" in str(refused.value)


def test_paraphrases_through_the_facade(tmp_path, corpus):
    (corpus / "more.txt").write_text("치타가 먹이를 쫓는다.\n치타 한 마리가 먹이를 쫓는다.\n", encoding="utf-8")
    with kosearch.Index.create(tmp_path / "idx", HashingEncoder()) as idx:
        idx.add_folder(corpus, unit="sentence")
        pairs = idx.paraphrases(top=3)
    assert pairs[0].score >= pairs[-1].score
    texts = {(pairs[0].a.text, pairs[0].b.text)}
    assert texts <= {("치타가 먹이를 쫓는다.", "치타 한 마리가 먹이를 쫓는다."),
                     ("치타 한 마리가 먹이를 쫓는다.", "치타가 먹이를 쫓는다.")}
    assert pairs[0].copies_a + pairs[0].copies_b == 3  # one text appears twice


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{tests!r}, {root!r}]
    import kosearch
    from kosearch_testing import HashingEncoder

    class SlowEncoder(HashingEncoder):
        def encode_documents(self, texts, **kwargs):
            time.sleep(0.05)
            return super().encode_documents(texts)

    with kosearch.Index.open_or_create(sys.argv[1], SlowEncoder()) as idx:
        idx.add_folder(sys.argv[2], checkpoint_sentences=40, unit="sentence")
    """
)


def _generation(index: Path) -> int:
    try:
        with sqlite3.connect(index / "metadata.sqlite", timeout=5) as db:
            row = db.execute("select value from manifest where key = 'generation'").fetchone()
            return int(row[0]) if row else -1
    except sqlite3.Error:
        return -1


def test_killed_run_leaves_a_consistent_index_and_resumes(tmp_path):
    docs = tmp_path / "many"
    docs.mkdir()
    for number in range(120):
        (docs / f"doc{number:03d}.txt").write_text(
            "\n".join(f"{number}번 문서의 {line}번째 문장입니다." for line in range(10)) + "\n", encoding="utf-8"
        )
    script = tmp_path / "ingest.py"
    script.write_text(KILL_SCRIPT.format(tests=str(TESTS), root=str(TESTS.parent)))
    index = tmp_path / "idx"
    child = subprocess.Popen([sys.executable, str(script), str(index), str(docs)])
    deadline = time.monotonic() + 120
    while _generation(index) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be interrupted"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with kosearch.Index.open(index, HashingEncoder()) as idx:
        info = idx.info()
        assert 0 < info.sentences < 1200 and info.sentences == len(idx)
        assert info.sentences == 10 * info.documents  # only whole documents were committed
        assert idx.search("문장", k=1)
    # Running again finishes the job: committed files are skipped, the rest are added.
    subprocess.run([sys.executable, str(script), str(index), str(docs)], check=True, timeout=300)
    with kosearch.Index.open(index, HashingEncoder()) as idx:
        assert idx.info().sentences == 1200 and idx.info().documents == 120
        named = sorted(f"{segment['name']}.faiss" for segment in idx.store.manifest["segments"])
        assert sorted(p.name for p in index.glob("*.faiss*")) == named  # the killed run's orphans are gone


def test_torch_backend_gives_the_same_hits_as_faiss(tmp_path, corpus):
    encoder = HashingEncoder()
    with kosearch.Index.create(tmp_path / "idx", encoder) as idx:
        idx.add_folder(corpus)
    queries = ["치타", "도서관 휴관", "수치 해석"]
    with kosearch.Index.open(tmp_path / "idx", encoder, backend="faiss") as idx:
        assert idx.info().vector_backend == "faiss"
        expected = [[(h.sentence_id, round(h.score, 5)) for h in hits] for hits in idx.search_batch(queries, k=4)]
        expected_pairs = [(p.a.sentence_id, p.b.sentence_id) for p in idx.paraphrases(top=5)]
    with kosearch.Index.open(tmp_path / "idx", encoder, backend="torch") as idx:
        assert idx.info().vector_backend == "torch"
        found = [[(h.sentence_id, round(h.score, 5)) for h in hits] for hits in idx.search_batch(queries, k=4)]
        assert found == expected
        assert [(p.a.sentence_id, p.b.sentence_id) for p in idx.paraphrases(top=5)] == expected_pairs
