"""Encoding in a child process (``encoder_process="child"``, ``kosearch index --encoder-process child``).

The child builds an ordinary ``Encoder`` from the settings it is given, so the checks here are that what
comes back is exactly what that encoder gives in this process (facts, vectors bit for bit, errors), that a
child that dies is a one-line error and never a hang, that ``release`` ends the child and the next encode
starts another, that the child does not outlive its parent, and that an index built through the child is
the index built in-process, with torch never imported by the writing process. The bundled model's few
queries go through numpy in the child (no torch), which keeps the plumbing tests quick; everything that
loads torch in the child is marked slow. Memory is measured in ``bench/bench_build_memory.py``
(docs/benchmarks.md, "i. Encoding in a child process").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import kosearch
from kosearch.encoders import Encoder
from kosearch.encoders import child_process
from kosearch.encoders.child_process import (
    CHILD_ENVIRONMENT,
    ENCODER_PROCESS_HELP,
    ChildProcessEncoder,
    encoder_process,
    resolve_device_elsewhere,
)
from kosearch.errors import EncoderNotFoundError, KosearchError
from kosearch.store import index_store
from kosearch_testing import write_numbered_documents

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["치타가 먹이를 쫓는다", "오늘 날씨가 맑다", "수치 해석 프로그램"]
CHECKPOINT = 5
"""Sentences per checkpoint in the index builds: ten checkpoints fill a tier, so a merge runs inside the run."""


def _gone(pid: int, seconds: float = 30.0) -> bool:
    """Whether process ``pid`` has exited (a zombie nobody reaps counts as exited) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in state:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def child():
    with ChildProcessEncoder(device="cpu") as encoder:
        yield encoder


def test_the_option_is_checked_and_its_help_names_every_value():
    assert encoder_process(None) == "in" and encoder_process(" Child ") == "child"
    assert encoder_process("in", ROOT) == "in"  # named: no folder overrides it
    with pytest.raises(KosearchError, match="auto, in, child"):
        encoder_process("thread")
    assert all(f"{name}:" in ENCODER_PROCESS_HELP for name in ("auto", "in", "child"))


def test_auto_runs_the_model_in_a_child_when_the_documents_are_large(tmp_path, monkeypatch):
    """``auto`` counts the bytes of the files an indexing run would read: what discovery finds, so not
    hidden folders (an index kept inside the folder, .git), ignored paths or formats kosearch skips."""
    from kosearch.index import encoder_process_for

    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes("가".encode() * 200)  # 600 bytes
    (folder / "sub" / "b.md").write_bytes(b"y" * 400)
    (folder / ".index").mkdir()
    (folder / ".index" / "segment.000001.faiss").write_bytes(b"v" * 5_000)  # hidden: never read
    (folder / "photo.jpg").write_bytes(b"j" * 5_000)  # not a format kosearch reads
    (folder / "skip").mkdir()
    (folder / "skip" / "c.txt").write_bytes(b"z" * 5_000)
    (folder / ".kosearchignore").write_text("skip/\n", encoding="utf-8")
    monkeypatch.setattr(child_process, "AUTO_CHILD_BYTES", 1_000)
    assert encoder_process_for(folder) == "child" and encoder_process_for(folder, " Auto ") == "child"
    assert encoder_process_for(folder / "a.txt") == "in"  # one file of 600 bytes
    assert encoder_process_for(folder, "in") == "in"  # named: the size does not matter
    assert encoder_process("auto") == "in"  # no documents known: the Python API's default
    monkeypatch.setattr(child_process, "AUTO_CHILD_BYTES", 600)
    assert encoder_process_for(folder / "a.txt") == "child"  # a single file at the size
    monkeypatch.setattr(child_process, "AUTO_CHILD_BYTES", 1_001)
    assert encoder_process_for(folder) == "in"
    assert encoder_process_for(tmp_path / "missing") == "in"  # the run itself reports the missing folder
    with pytest.raises(KosearchError, match="auto, in, child"):
        encoder_process_for(folder, "thread")


@pytest.mark.parametrize("threshold, expected", [(1, "child"), (1 << 40, "in")])
def test_kosearch_index_decides_auto_by_the_folder_it_indexes(tmp_path, monkeypatch, threshold, expected):
    """The CLI resolves ``auto`` (its default) before the encoder loads, through the facade."""
    from typer.testing import CliRunner

    from kosearch import cli
    from kosearch_testing import HashingEncoder

    asked: list[str | None] = []

    def load(model, device, encoder_backend=None, precision=None, encoder_process=None):
        asked.append(encoder_process)
        return HashingEncoder()

    monkeypatch.setattr(kosearch.index, "_as_encoder", load)
    monkeypatch.setattr(child_process, "AUTO_CHILD_BYTES", threshold)
    documents = write_numbered_documents(tmp_path / "docs", files=1)
    result = CliRunner().invoke(cli.app, ["index", str(documents), "--index", str(tmp_path / "index")])
    assert result.exit_code == 0 and asked == [expected], result.output


def test_the_child_reports_what_the_in_process_encoder_records(child):
    local = Encoder(device="cpu")
    for name in ("name", "device", "precision", "encoder_backend", "dimension", "prompts", "fingerprint",
                 "vector_family", "batch_size"):
        assert getattr(child, name) == getattr(local, name), name
    assert kosearch.index.encoder_manifest(child) == kosearch.index.encoder_manifest(local)


def test_queries_come_back_as_the_in_process_encoder_computes_them(child):
    vectors = child.encode_queries(QUERIES)
    assert vectors.dtype == np.float32 and vectors.shape == (len(QUERIES), 384) and vectors.flags.c_contiguous
    np.testing.assert_array_equal(vectors, Encoder(device="cpu").encode_queries(QUERIES))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/environ")
def test_the_child_starts_with_its_allocator_settings_unless_the_user_set_them(child, monkeypatch):
    environ = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{child.pid}/environ").read_text().split("\0") if "=" in entry
    )
    for name, value in CHILD_ENVIRONMENT.items():
        assert environ[name] == os.environ.get(name, value)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "1024")
    assert child_process.child_environment()["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "1024"


def test_a_child_is_recycled_after_encoding_its_share_and_the_next_answers_the_same(monkeypatch):
    """After ``RECYCLE_AFTER_TEXTS`` texts the child is ended once its answer is in; the next encode starts a
    fresh one, whose vectors are the same."""
    monkeypatch.setattr(child_process, "RECYCLE_AFTER_TEXTS", 4)
    with ChildProcessEncoder(device="cpu") as encoder:
        first = encoder.encode_queries(QUERIES)
        pid = encoder.pid
        assert encoder.running  # 3 texts: under the limit
        # One text alone against the same text in a batch of three: padding changes the matrix shapes, and on some
        # CPUs (AMD EPYC here) the BLAS kernels then round differently in the last float32 bit.
        assert np.allclose(encoder.encode_queries(QUERIES[:1]), first[:1], rtol=0, atol=1e-6)
        assert not encoder.running and _gone(pid)  # 4 texts: recycled after answering
        assert np.array_equal(encoder.encode_queries(QUERIES), first)
        assert encoder.running and encoder.pid != pid  # a fresh child, counting from zero again


def test_an_error_in_the_child_is_raised_here_as_the_same_error(tmp_path, child):
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderNotFoundError) as in_process:
        Encoder(str(missing), device="cpu")
    with pytest.raises(EncoderNotFoundError) as through_child:
        ChildProcessEncoder(str(missing), device="cpu")
    assert str(through_child.value) == str(in_process.value)
    with pytest.raises(KosearchError) as bad_device:
        ChildProcessEncoder(device="tpu")
    assert str(bad_device.value).startswith("Unknown device 'tpu'")
    # an error raised by a call (not at start) leaves the child serving
    with pytest.raises(Exception) as in_process_call:
        Encoder(device="cpu").encode_queries([None])
    with pytest.raises(Exception) as child_call:
        child.encode_queries([None])
    assert type(child_call.value) is type(in_process_call.value) or isinstance(child_call.value, KosearchError)
    assert str(in_process_call.value) in str(child_call.value)
    assert child.encode_queries(QUERIES[:1]).shape == (1, 384)


def test_release_ends_the_child_and_the_next_encode_starts_another():
    with ChildProcessEncoder(device="cpu") as encoder:
        first = encoder.pid
        before = encoder.encode_queries(QUERIES)
        encoder.release()
        assert encoder.pid is None and not encoder.running and _gone(first)
        np.testing.assert_array_equal(encoder.encode_queries(QUERIES), before)
        assert encoder.running and encoder.pid != first
        encoder.release()
        encoder.release()  # twice is harmless


def test_a_killed_child_is_a_one_line_error_and_the_next_call_starts_a_new_one():
    with ChildProcessEncoder(device="cpu") as encoder:
        os.kill(encoder.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(KosearchError) as error:
            encoder.encode_queries(QUERIES)
        assert time.monotonic() - started < 30
        message = str(error.value)
        assert "\n" not in message and "SIGKILL" in message and "--encoder-process in" in message
        assert not encoder.running
        assert encoder.encode_queries(QUERIES).shape == (3, 384)


@pytest.mark.parametrize("how", ["exit", "killed"])
def test_the_child_does_not_outlive_its_parent(how):
    script = (
        "import os, signal, sys\n"
        "from kosearch.encoders.child_process import ChildProcessEncoder\n"
        "encoder = ChildProcessEncoder(device='cpu')\n"
        "print(encoder.pid, flush=True)\n"
        f"if {how!r} == 'killed':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    pid = int(result.stdout.split()[0])
    assert _gone(pid), f"the encoder's child {pid} outlived its parent ({how})"


def test_a_device_only_torch_can_check_is_checked_in_a_child(monkeypatch):
    import kosearch.encoders.device as device

    assert resolve_device_elsewhere("cpu") == "cpu"
    monkeypatch.setattr(device, "torch_may_see_a_gpu", lambda: True)  # as with a CUDA build of torch
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert resolve_device_elsewhere(None) in ("cpu", "cuda")
    with pytest.raises(KosearchError, match="cuda:7"):
        resolve_device_elsewhere("cuda:7")
    with pytest.raises(KosearchError, match="Unknown device"):
        resolve_device_elsewhere("tpu")


def test_an_index_records_nothing_about_where_its_encoder_ran(tmp_path, child):
    with kosearch.Index.create(tmp_path / "via-child", model=child) as index:
        via_child = dict(index.store.manifest)
    with kosearch.Index.create(tmp_path / "in-process", model=Encoder(device="cpu")) as index:
        in_process = dict(index.store.manifest)
    for key in ("model", "fingerprint", "dimension", "prompts", "encoder_backend"):
        assert via_child.get(key) == in_process.get(key), key


def test_a_ray_run_rebuilds_the_same_encoder_from_a_child_as_from_an_in_process_one(child):
    """``kosearch index --ray`` on a large folder (``auto``: a child) describes the driver's encoder to
    the actors from the facts the child reported; they must name the model the in-process encoder does."""
    from kosearch.distributed.ray_ingest import EncoderSpec

    assert EncoderSpec.of(child, "bf16") == EncoderSpec.of(Encoder(device="cpu"), "bf16")
    assert EncoderSpec.of(child).model is None  # the bundled model, named so each node finds its own copy


def test_the_cli_refuses_an_unknown_encoder_process_in_one_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("치타가 먹이를 쫓는다.\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(tmp_path / "docs"), "-i", str(tmp_path / "index"),
         "--encoder-process", "thread"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and "--encoder-process" in lines[-1] and "Traceback" not in result.stderr


# -- through torch in the child (slow) -------------------------------------------------------------------


def _reviews(count: int) -> list[str]:
    words = ["영화", "배우", "연기", "음악", "결말", "감동", "지루", "최고", "별로", "다시", "보고", "싶다"]
    return [" ".join(words[(n * 7 + k * 3) % len(words)] for k in range(3 + n % 9)) + f" {n}번" for n in range(count)]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_documents_through_the_real_bundled_encoder_are_bit_identical(precision):
    texts = _reviews(300) + QUERIES
    local = Encoder(device="cpu", precision=precision)
    expected = local.encode_documents(texts)
    with ChildProcessEncoder(device="cpu", precision=precision) as encoder:
        vectors = encoder.encode_documents(texts)
        assert vectors.dtype == np.float32
        np.testing.assert_array_equal(vectors, expected)
        np.testing.assert_array_equal(encoder.encode_queries(texts[:100]), local.encode_queries(texts[:100]))


@pytest.mark.slow
def test_a_child_killed_during_a_call_is_an_error_not_a_hang():
    with ChildProcessEncoder(device="cpu") as encoder:
        encoder.encode_documents(QUERIES)  # the model is loaded: the next call computes for a while
        killer = threading.Timer(1.0, os.kill, (encoder.pid, signal.SIGKILL))
        killer.start()
        started = time.monotonic()
        with pytest.raises(KosearchError, match="SIGKILL"):
            encoder.encode_documents(_reviews(20_000), batch_size=8)
        killer.join()
        assert time.monotonic() - started < 120


@pytest.mark.slow
def test_an_interrupted_call_ends_the_child_and_the_next_answer_is_its_own():
    """Ctrl-C while the child computes: its late answer must not become the answer to the next request."""
    import _thread

    # a process started in the background (`cmd &`, as a CI runner may start pytest) inherits SIGINT ignored,
    # and interrupt_main then does nothing: Python's own handler is put back for this test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ChildProcessEncoder(device="cpu") as encoder:
            encoder.encode_documents(QUERIES)
            pid = encoder.pid
            interrupter = threading.Timer(1.0, _thread.interrupt_main)
            interrupter.start()
            with pytest.raises(KeyboardInterrupt):
                encoder.encode_documents(_reviews(20_000), batch_size=8)
            interrupter.join()
            assert _gone(pid, seconds=15)
            expected = Encoder(device="cpu").encode_documents(QUERIES)
            np.testing.assert_array_equal(encoder.encode_documents(QUERIES), expected)
    finally:
        signal.signal(signal.SIGINT, previous)


def _state(folder: Path) -> tuple:
    with kosearch.Index.open(folder) as index:
        pairs = sorted(
            (int(i), vector.tobytes()) for ids, vectors in index.store.iter_vectors() for i, vector in zip(ids, vectors)
        )
        hits = [
            [(hit.path, hit.line, hit.text, hit.score) for hit in index.search(query, k=5, mode=mode)]
            for query in ("영화 리뷰 3", "문서 12의 문장") for mode in ("dense", "hybrid")
        ]
        return pairs, hits, index.store.counts(), len(index.store.segment_entries())


@pytest.mark.slow
def test_an_index_built_through_the_child_is_the_index_built_in_process(tmp_path, monkeypatch):
    """70 sentences in checkpoints of 5: a tier merge inside the run, before which the child is ended."""
    documents = write_numbered_documents(tmp_path / "docs")
    starts: list[int] = []
    original = ChildProcessEncoder._start

    def counted(self):
        facts = original(self)
        starts.append(self.pid)
        return facts

    monkeypatch.setattr(ChildProcessEncoder, "_start", counted)
    monkeypatch.setattr(index_store, "RELEASE_BEFORE_MERGE_BYTES", 0)  # release before this 50-vector merge too
    with kosearch.Index.create(tmp_path / "child", device="cpu", encoder_process="child") as index:
        report = index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)
        assert index.encoder.in_child_process
    assert report.sentences_added == 70
    assert len(starts) == 2 and all(_gone(pid) for pid in starts)  # ended before the merge, started again after
    with kosearch.Index.create(tmp_path / "in", device="cpu") as index:
        index.add_folder(documents, unit="sentence", checkpoint_sentences=CHECKPOINT)
    assert _state(tmp_path / "child") == _state(tmp_path / "in")


@pytest.mark.slow
def test_the_writing_process_never_imports_torch(tmp_path):
    """Run in a process of its own: other tests of this session import torch."""
    documents = write_numbered_documents(tmp_path / "docs", files=3)
    script = (
        "import json, sys\n"
        "import kosearch\n"
        "with kosearch.Index.open_or_create(sys.argv[2], device='cpu', encoder_process='child') as index:\n"
        "    report = index.add_folder(sys.argv[1], unit='sentence')\n"
        "    hits = index.search('영화 리뷰', k=3)\n"
        "    pid = index.encoder.pid\n"
        "print(json.dumps({'added': report.sentences_added, 'hits': len(hits), 'child': pid,\n"
        "                  'torch': 'torch' in sys.modules, 'st': 'sentence_transformers' in sys.modules,\n"
        "                  'transformers': 'transformers' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(documents), str(tmp_path / "index")], capture_output=True, text=True,
        timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["added"] == 15 and seen["hits"] == 3
    assert not seen["torch"] and not seen["st"] and not seen["transformers"]
    assert _gone(seen["child"])  # Index.close ended it


@pytest.mark.slow
def test_kosearch_index_with_encoder_process_child(tmp_path):
    documents = write_numbered_documents(tmp_path / "docs", files=2)
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(documents), "-i", str(tmp_path / "index"), "--unit",
         "sentence", "--device", "cpu", "--encoder-process", "child"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "in a child process" in result.stderr and "10 sentences encoded" in result.stdout
    with kosearch.Index.open(tmp_path / "index") as index:
        assert len(index) == 10
