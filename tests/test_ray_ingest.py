"""Ingest on Ray (kosearch.distributed.ray_ingest) against the single-process ingest it must equal.

A local Ray cluster (2 CPUs) is started once for the module. Its workers import this checkout (and
tests/, for the stub encoder's factory) through the cluster's PYTHONPATH.
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

import numpy as np
import pytest

from kosearch_testing import HashingEncoder, HashingEncoderFactory, index_contents

from kosearch import Index, KosearchError, RayOptions
from kosearch.distributed.ray_ingest import MISSING_RAY, WorkerPlan, plan_workers, ray_documents
from kosearch.ingest import IngestOptions, ingest_folder

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"
PYTHONPATH = os.pathsep.join([str(ROOT), str(ROOT / "tests")])


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason='Ray ingest tests need the ray extra: pip install "kosearch[ray]"')
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": PYTHONPATH, "OMP_NUM_THREADS": "1"}},
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture()
def corpus(tmp_path):
    """The sample corpus plus a file no reader can parse and one to be changed later."""
    folder = tmp_path / "corpus"
    shutil.copytree(SAMPLE, folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a pdf")
    (folder / "zz_last.txt").write_text("마지막 파일의 첫 문장입니다. 두 번째 문장도 있습니다.\n", encoding="utf-8")
    return folder


SMALL = RayOptions(files_per_task=2, documents_per_batch=3)
"""Several reading tasks and encoding batches even on the small sample corpus."""


def build(index_folder: Path, corpus: Path, ray_options: RayOptions | None, factory=None, **options):
    """One ingest of ``corpus`` with the hashing encoder, on Ray when ``ray_options`` is given."""
    encoder = HashingEncoder()
    index = Index.open_or_create(index_folder, encoder)
    try:
        source = None
        if ray_options is not None:
            source = ray_documents(ray_options, factory or HashingEncoderFactory(), encoder.fingerprint)
        return ingest_folder(index.store, encoder, corpus, IngestOptions(**options), None, source)
    finally:
        index.close()


def assert_same_index(left: Path, right: Path) -> None:
    a, b = index_contents(left), index_contents(right)
    assert a["documents"] == b["documents"]
    assert a["skipped"] == b["skipped"]
    assert a["units"] == b["units"]  # text, line, start, end, page, fields, lexical tokens
    assert a["vectors"].keys() == b["vectors"].keys()
    keys = sorted(a["vectors"])
    cosine = np.sum(np.stack([a["vectors"][k] for k in keys]) * np.stack([b["vectors"][k] for k in keys]), axis=1)
    assert cosine.min() >= 0.9999


def test_ray_build_equals_single_process_build(ray_cluster, corpus, tmp_path):
    single = build(tmp_path / "single", corpus, None)
    on_ray = build(tmp_path / "ray", corpus, SMALL)
    assert on_ray.files_added == single.files_added > 5
    assert on_ray.sentences_added == single.sentences_added > 100
    assert [s.path for s in on_ray.skipped] == [s.path for s in single.skipped] == ["broken.pdf"]
    assert_same_index(tmp_path / "single", tmp_path / "ray")


def test_ray_update_skips_unchanged_and_matches_single_process_update(ray_cluster, corpus, tmp_path):
    build(tmp_path / "single", corpus, None)
    build(tmp_path / "ray", corpus, SMALL)
    (corpus / "zz_last.txt").write_text("바뀐 파일입니다. 내용이 달라졌습니다.\n", encoding="utf-8")
    removed = sorted(p for p in corpus.rglob("*.md") if p.name != "README.md")[0]
    removed.unlink()
    single = build(tmp_path / "single", corpus, None)
    on_ray = build(tmp_path / "ray", corpus, SMALL)
    assert (on_ray.files_updated, on_ray.files_removed) == (single.files_updated, single.files_removed) == (1, 1)
    assert on_ray.files_unchanged == single.files_unchanged > 5
    assert on_ray.sentences_added == single.sentences_added >= 1
    assert_same_index(tmp_path / "single", tmp_path / "ray")


def test_a_run_that_fails_midway_keeps_its_checkpoints_and_the_next_run_completes(ray_cluster, corpus, tmp_path):
    build(tmp_path / "clean", corpus, None, checkpoint_sentences=40)
    failing = HashingEncoderFactory(fail_on="마지막 파일")  # zz_last.txt: the last file in path order
    first = build(tmp_path / "ray", corpus, SMALL, factory=failing, checkpoint_sentences=40)
    assert any("reading stopped early" in w for w in first.warnings), first.warnings
    with Index.open(tmp_path / "ray") as partial, Index.open(tmp_path / "clean") as clean:
        assert 0 < len(partial) < len(clean)
    second = build(tmp_path / "ray", corpus, SMALL, checkpoint_sentences=40)
    assert second.files_unchanged > 0 and second.files_added >= 1
    assert_same_index(tmp_path / "clean", tmp_path / "ray")


KILLED_DRIVER = """
import sys, ray
sys.path[:0] = {paths!r}
from kosearch_testing import HashingEncoder, HashingEncoderFactory
from kosearch import Index, RayOptions
from kosearch.distributed.ray_ingest import ray_documents
from kosearch.ingest import IngestOptions, ingest_folder

ray.init(address={address!r}, logging_level="WARNING", runtime_env={{"env_vars": {{"PYTHONPATH": {pythonpath!r}}}}})
encoder = HashingEncoder()
index = Index.open_or_create({index!r}, encoder)
done = []
def progress(files, sentences, path):
    if sentences and not done:
        done.append(1)
        print("started", flush=True)
source = ray_documents(RayOptions(files_per_task=1, documents_per_batch=1), HashingEncoderFactory(), encoder.fingerprint)
ingest_folder(index.store, encoder, {corpus!r}, IngestOptions(checkpoint_sentences=10), progress, source)
print("finished", flush=True)
"""


def test_a_killed_driver_resumes_from_its_committed_segments(ray_cluster, corpus, tmp_path):
    build(tmp_path / "clean", corpus, None)
    script = KILLED_DRIVER.format(
        paths=[str(ROOT), str(ROOT / "tests")], address=ray_cluster, index=str(tmp_path / "ray"), corpus=str(corpus),
        pythonpath=PYTHONPATH,
    )
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    try:
        assert driver.stdout.readline().strip() == "started"
        manifest = tmp_path / "ray" / "metadata.sqlite"
        deadline = time.monotonic() + 60
        while _generation(manifest) < 2 and time.monotonic() < deadline:  # a few checkpoints committed
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL, "the driver finished before it could be killed"
    with Index.open(tmp_path / "ray") as partial, Index.open(tmp_path / "clean") as clean:
        assert 0 < len(partial) < len(clean)
    resumed = build(tmp_path / "ray", corpus, SMALL)
    assert resumed.files_unchanged > 0
    assert_same_index(tmp_path / "clean", tmp_path / "ray")


def _generation(metadata: Path) -> int:
    import sqlite3

    if not metadata.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{metadata}?mode=ro", uri=True, timeout=1)
        row = db.execute("select value from manifest where key = 'generation'").fetchone()
        db.close()
    except sqlite3.Error:
        return 0
    return int(json.loads(row[0])) if row else 0


def test_worker_plan_for_gpu_and_cpu_clusters():
    """The GPU branch of the actor pool, decided from made-up cluster resources."""
    assert plan_workers(RayOptions(), {"CPU": 64, "GPU": 8}) == WorkerPlan(workers=8, gpus=1.0, cpus=1.0)
    assert plan_workers(RayOptions(gpus_per_worker=0.5), {"CPU": 64, "GPU": 8}).workers == 16
    assert plan_workers(RayOptions(), {"CPU": 2}) == WorkerPlan(workers=1, gpus=0.0, cpus=1.0)
    assert plan_workers(RayOptions(encode_workers=3), {"CPU": 8}).workers == 3
    with pytest.raises(KosearchError, match="need 16 GPUs"):
        plan_workers(RayOptions(encode_workers=16), {"CPU": 64, "GPU": 8})


def test_missing_ray_is_one_line_telling_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(KosearchError) as caught:
        ray_documents(SMALL, HashingEncoderFactory(), "x")
    assert str(caught.value) == MISSING_RAY
    assert 'pip install "kosearch[ray]"' in MISSING_RAY


def test_cli_without_ray_prints_one_line_and_no_traceback(tmp_path):
    blocked = tmp_path / "site"
    blocked.mkdir()
    (blocked / "ray.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(SAMPLE), "--index", str(tmp_path / "idx"), "--ray", "auto", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and 'pip install "kosearch[ray]"' in lines[0], result.stderr


@pytest.mark.slow
def test_ray_build_through_the_cli_equals_the_bundled_encoders_single_process_build(ray_cluster, tmp_path):
    """The real bundled encoder in the actors, the real CLI on the driver."""
    with Index.create(tmp_path / "single", None, device="cpu") as index:
        single = index.add_folder(SAMPLE)
    env = {**os.environ, "PYTHONPATH": PYTHONPATH, "RAY_ADDRESS": ray_cluster}
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(SAMPLE), "--index", str(tmp_path / "ray"), "--device", "cpu",
         "--ray", "auto", "--json", "-q"],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sentences_added"] == single.sentences_added > 100
    assert_same_index(tmp_path / "single", tmp_path / "ray")


def test_ray_workers_without_ray_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(SAMPLE), "--index", str(tmp_path / "idx"), "--ray-workers", "2"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--ray-workers needs --ray" in result.stderr
    assert not (tmp_path / "idx").exists()  # refused before anything was created


def test_an_actor_whose_encoder_is_not_the_indexs_refuses_with_a_kosearch_error(ray_cluster, corpus, tmp_path):
    """Another model on a worker node would put foreign vectors in the index: the actor refuses to start."""
    encoder = HashingEncoder()
    with Index.open_or_create(tmp_path / "ray", encoder) as index:
        source = ray_documents(SMALL, HashingEncoderFactory(dimension=32), encoder.fingerprint)
        with pytest.raises(KosearchError, match="fingerprint"):
            ingest_folder(index.store, encoder, corpus, IngestOptions(), None, source)
        assert len(index) == 0
