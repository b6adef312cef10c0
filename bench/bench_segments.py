"""The living index at scale (issue 7): what the segmented store costs at about a million units.

Measured on the NSMC reviews (../shared/data/nsmc), one review per line, dealt into 1,000 files
(``part_0000.txt`` ... ``part_0999.txt``; ``part_???0.txt`` is 10% of the documents), indexed with
``--unit sentence`` through the real ``Index.add_folder`` path (documents stage, ingest, store,
checkpoints every 100,000 units, tiered merges) with three stand-ins, each timed and reported:

- vectors: a deterministic character-bigram hashing encoder (384-d, L2-normalised, numpy), because
  encoding a million sentences with the real model takes hours on this 2-core machine. Its vectors
  have real neighbourhood structure (texts sharing bigrams are close), unlike random ones, so the
  ANN index's recall and the queries' work are not those of noise;
- sentence splitting: a regex at ``.``, ``!``, ``?`` followed by a space, and at line ends (1,004,438
  units over all reviews, close to Kiwi's ~1M) instead of Kiwi;
- lexical tokens: whitespace words instead of Kiwi morphemes (the FTS5 rows are still written).

What Kiwi and the real encoder would add is measured in the same run on a sample (``encode`` phase):
the bundled encoder's documents/s next to plain ``SentenceTransformer.encode`` of the same sample,
Kiwi splitting and morpheme analysis per sentence, and the projection to the corpus size.

Each phase is a fresh child process (its peak RSS and its /proc/self/io counters are its own):
``build`` (index, bytes written, peak RSS, time split), ``open`` (a reader's open: seconds, RSS),
``query`` (``Index.search(mode="dense")`` p50/p95 over 100 held-out reviews and the 60 sample questions with the stand-in query vectors; the real encoder's
query encoding is timed in ``encode`` and added), ``compact`` (merge to one segment, HNSW above the
break-even, recall@10 in the manifest), ``query`` again (ANN; recall@10 of its hits against the exact
ones of the first ``query``), ``delete`` (10% of the documents, then compact: time, disk before/after),
``query`` again (no hit from a removed file).

``--encoder real`` drops all three stand-ins: the bundled encoder (``--precision``, bf16 by default,
which this CPU's AMX runs 2.8-5x faster than fp32 at cosine >= 0.99996), Kiwi's splitting and Kiwi
morphemes, i.e. exactly ``kosearch index --unit sentence``; queries are then encoded by the real
model inside the timed search, so ``query`` p50 includes query encoding. Its documents are every
review but the held-out ones (``--units`` is ignored): about a million Kiwi sentences.

Usage (about 40 minutes on this machine at load 2-4)::

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_segments.py --units 1000000 \
        --work /tmp/kosearch-bench-segments --out docs/results/bench_segments_DATE.json
    OMP_NUM_THREADS=2 python bench/bench_segments.py --encoder real --precision bf16 \
        --work runs/b1m --out docs/results/bench_segments_real_DATE.json     # 45-60 minutes idle
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import nsmc_bench_data  # noqa: E402

PARTS = 1000
HELD_OUT = 200
"""The last reviews, never indexed; the first ``QUERY_REVIEWS`` of them (and the 60 sample questions) are queries."""
QUERY_REVIEWS = 100
DIMENSION = 384
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
REMOVED_GLOB = "part_???0.txt"


# -- the stand-ins --------------------------------------------------------------------------------


def hash_vectors(texts: list[str], dimension: int = DIMENSION) -> np.ndarray:
    """Character-bigram hashing, vectorised: row i counts the bigrams of `` text_i `` into buckets."""
    if not texts:
        return np.zeros((0, dimension), np.float32)
    joined = "\x00".join(f" {text} " for text in texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    rows = np.cumsum(codes == 0)[:-1]
    first, second = codes[:-1], codes[1:]
    valid = (first != 0) & (second != 0)
    buckets = ((first * np.uint64(1000003) + second) * np.uint64(2654435761) >> np.uint64(7)) % np.uint64(dimension)
    flat = rows[valid].astype(np.int64) * dimension + buckets[valid].astype(np.int64)
    vectors = np.bincount(flat, minlength=len(texts) * dimension).reshape(len(texts), dimension).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


class HashEncoder:
    """The ``Encoder`` interface over ``hash_vectors``; its time is counted in ``seconds``."""

    device, name, prompts, dimension = "cpu", "bench/hash-bigrams-384", {}, DIMENSION
    fingerprint = hashlib.sha256(b"bench/hash-bigrams-384").hexdigest()[:16]

    def __init__(self) -> None:
        self.seconds = 0.0

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        started = time.perf_counter()
        vectors = hash_vectors(list(texts))
        self.seconds += time.perf_counter() - started
        return vectors

    encode_queries = encode_documents


def make_encoder():
    """The encoder every phase uses: the hashing stand-in, or with ``--encoder real`` the bundled model."""
    if os.environ.get("BENCH_ENCODER") == "real":
        from kosearch.encoders import Encoder

        return Encoder(None, device="cpu", precision=os.environ.get("BENCH_PRECISION", "bf16"))
    return HashEncoder()


def real_encoder() -> bool:
    return os.environ.get("BENCH_ENCODER") == "real"


def regex_pieces(records, max_chars):
    """Stand-in for ``kosearch.documents.split._sentence_pieces``: regex sentences, same contract."""
    for record in records:
        text, position = record.text, 0
        for match in list(SENTENCE_END.finditer(text)) + [None]:
            stop = match.start() if match else len(text)
            begin = position
            while begin < stop and text[begin].isspace():
                begin += 1
            if begin < stop and any(char.isalnum() for char in text[begin:stop]):
                yield record, begin, stop
            position = match.end() if match else len(text)


class Timer:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                if hasattr(result, "__next__"):
                    result = list(result)
                return result
            finally:
                self.seconds += time.perf_counter() - started

        return timed


# -- measuring a process ----------------------------------------------------------------------------


def io_counters() -> dict[str, int]:
    """This process's /proc/self/io: ``wchar`` (bytes passed to write calls) and ``write_bytes``
    (bytes it caused to be sent to storage)."""
    values = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, value = line.split(":")
        values[key.strip()] = int(value)
    return values


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def folder_bytes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(folder.iterdir()) if path.is_file()}


def machine_load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- corpus -----------------------------------------------------------------------------------------


def read_reviews() -> list[str]:
    """The non-empty NSMC reviews in file order, whitespace collapsed (``nsmc_bench_data.read_reviews``)."""
    return [review for _, review in nsmc_bench_data.read_reviews()]


def count_units(review: str) -> int:
    return sum(1 for piece in SENTENCE_END.split(review) if any(char.isalnum() for char in piece))


def prepare(work: Path, units: int) -> dict:
    """The first reviews holding at most ``units`` units, as 1,000 files; the last 200 reviews are queries."""
    reviews = read_reviews()
    queries = reviews[-HELD_OUT:]
    chosen, total = [], 0
    for review in reviews[:-HELD_OUT]:
        count = count_units(review)
        if total + count > units:
            break
        chosen.append(review)
        total += count
    documents = work / "documents"
    shutil.rmtree(documents, ignore_errors=True)
    documents.mkdir(parents=True)
    buckets: list[list[str]] = [[] for _ in range(PARTS)]
    for position, review in enumerate(chosen):
        buckets[position % PARTS].append(review)
    for number, bucket in enumerate(buckets):
        (documents / f"part_{number:04d}.txt").write_text("\n".join(bucket) + "\n", encoding="utf-8")
    from nsmc_bench_data import sample_questions

    all_queries = queries[:QUERY_REVIEWS] + sample_questions()
    (work / "queries.json").write_text(json.dumps(all_queries, ensure_ascii=False))
    return {"reviews": len(chosen), "units_expected": total, "queries": len(all_queries)}


# -- phases (each in its own process) ---------------------------------------------------------------


def phase_build(work: Path) -> dict:
    import kosearch.documents.split as split
    from kosearch.index import Index
    from kosearch.search.morphemes import MorphemeAnalyzer
    from kosearch.store.index_store import IndexStore

    split_timer, lexical_timer, store_timer = Timer(), Timer(), Timer()
    if real_encoder():
        MorphemeAnalyzer.analyze_batch = lexical_timer.wrap(MorphemeAnalyzer.analyze_batch)
    else:
        split._sentence_pieces = split_timer.wrap(regex_pieces)
        MorphemeAnalyzer.analyze_batch = lexical_timer.wrap(lambda self, texts: [text.split() for text in texts])
    checkpoint_timer, merge_timer = Timer(), Timer()
    IndexStore.add_sentences = store_timer.wrap(IndexStore.add_sentences)
    IndexStore.checkpoint = checkpoint_timer.wrap(IndexStore.checkpoint)
    IndexStore._merge = merge_timer.wrap(IndexStore._merge)
    encoder = make_encoder()
    index_folder = work / "index"
    shutil.rmtree(index_folder, ignore_errors=True)
    io_before = io_counters()
    started = time.perf_counter()
    with Index.create(index_folder, model=encoder) as index:
        report = index.add_folder(work / "documents", unit="sentence")
        segments = [entry.to_dict() for entry in index.store.segment_entries()]
    wall = time.perf_counter() - started
    io_after = io_counters()
    files = folder_bytes(index_folder)
    units = report.sentences_added
    return {
        "units": units,
        "documents": report.files_added,
        "wall_s": wall,
        "split_s_background_thread": split_timer.seconds,
        "lexical_s": lexical_timer.seconds,
        "stand_in_encoding_s": getattr(encoder, "seconds", None),
        "encoder": getattr(encoder, "name", "?"),
        "store_add_sentences_s": store_timer.seconds,
        "store_checkpoint_s_incl_merges": checkpoint_timer.seconds,
        "store_tier_merges_s": merge_timer.seconds,
        "wchar": io_after["wchar"] - io_before["wchar"],
        "write_bytes": io_after["write_bytes"] - io_before["write_bytes"],
        "final_bytes": sum(files.values()),
        "files": files,
        "vectors_bytes": units * DIMENSION * 4,
        "peak_rss": peak_rss_bytes(),
        "segments": segments,
    }


def phase_open(work: Path) -> dict:
    import faiss  # noqa: F401  (imported before the baseline, as a reader would have it)

    import kosearch  # noqa: F401
    from kosearch.index import Index

    baseline = rss_bytes()
    started = time.perf_counter()
    index = Index.open(work / "index")
    seconds = time.perf_counter() - started
    after_open = rss_bytes()
    query = make_encoder().encode_queries(["정말 재미있는 영화였어요"]) if real_encoder() else hash_vectors(["정말 재미있는 영화였어요"])
    started = time.perf_counter()
    index.store.dense_search(query, 10)
    first_search = time.perf_counter() - started
    after_search = rss_bytes()
    live, segments = len(index), len(index.store.segment_entries())
    index.close()
    return {
        "open_s": seconds,
        "rss_before_open": baseline,
        "rss_extra_after_open": after_open - baseline,
        "first_search_s": first_search,
        "rss_extra_after_first_search": after_search - baseline,
        "live_units": live,
        "segments": segments,
    }


def phase_query(work: Path, label: str) -> dict:
    from kosearch.index import Index

    queries = json.loads((work / "queries.json").read_text())
    encoder = make_encoder()
    times, ids, paths, short = [], [], [], 0
    with Index.open(work / "index", model=encoder) as index:
        for query in queries[:5]:
            index.search(query, k=10, mode="dense")  # warm-up
        for query in queries:
            started = time.perf_counter()
            hits = index.search(query, k=10, mode="dense")
            times.append((time.perf_counter() - started) * 1000)
            ids.append([hit.sentence_id for hit in hits])
            paths.extend(hit.path for hit in hits)
            short += len(hits) < 10
        info = index.info()
    (work / f"hits_{label}.json").write_text(json.dumps(ids))
    removed = re.compile(REMOVED_GLOB.replace("?", ".").replace(".txt", r"\.txt"))
    return {
        "queries": len(queries),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "stand_in_query_encoding_ms_mean": encoder.seconds * 1000 / (len(queries) + 5) if hasattr(encoder, "seconds") else None,
        "short_results": short,
        "hits_from_removed_files": sum(1 for path in paths if removed.fullmatch(Path(path).name)),
        "segments": [entry for entry in info.segment_details],
    }


def phase_compact(work: Path) -> dict:
    from kosearch.index import Index

    with Index.open(work / "index", model=make_encoder(), writable=True) as index:
        io_before = io_counters()
        report = index.compact()
        io_after = io_counters()
        info = index.info()
    return {
        **report.to_dict(),
        "wchar": io_after["wchar"] - io_before["wchar"],
        "write_bytes": io_after["write_bytes"] - io_before["write_bytes"],
        "peak_rss": peak_rss_bytes(),
        "segments": info.segment_details,
        "deleted_vectors": info.deleted_vectors,
        "live_units": info.sentences,
    }


def phase_delete(work: Path) -> dict:
    from kosearch.index import Index

    with Index.open(work / "index", model=make_encoder(), writable=True) as index:
        before = index.store.size_bytes()
        io_before = io_counters()
        started = time.perf_counter()
        removal = index.remove([REMOVED_GLOB])
        remove_s = time.perf_counter() - started
        after_remove = index.store.size_bytes()
        deleted = index.store.deleted_count()
        report = index.compact()
        io_after = io_counters()
        info = index.info()
    return {
        "documents_removed": removal.documents,
        "units_removed": removal.sentences,
        "remove_s": remove_s,
        "bytes_before": before,
        "bytes_after_remove": after_remove,
        "deleted_vectors_before_compact": deleted,
        "compact": report.to_dict(),
        "wchar": io_after["wchar"] - io_before["wchar"],
        "peak_rss": peak_rss_bytes(),
        "segments": info.segment_details,
        "deleted_vectors_after": info.deleted_vectors,
        "live_units": info.sentences,
    }


def phase_encode(work: Path, sample_size: int) -> dict:
    """The real bundled encoder: documents/s next to plain SentenceTransformer.encode, query encoding
    one at a time, and Kiwi's split + morphemes per sentence, on a sample of NSMC."""
    import torch
    from sentence_transformers import SentenceTransformer

    from kosearch.documents.split import split_text
    from kosearch.encoders import Encoder, bundled_model_path
    from kosearch.search.morphemes import MorphemeAnalyzer

    precision = os.environ.get("BENCH_PRECISION", "fp32") if real_encoder() else "fp32"
    if not real_encoder():
        torch.set_num_threads(1)
    reviews = read_reviews()
    sample_reviews = reviews[300_000 : 300_000 + sample_size]
    started = time.perf_counter()
    sentences = [s.text for review in sample_reviews for s in split_text(review, mode="sentence")]
    kiwi_split_s = time.perf_counter() - started
    started = time.perf_counter()
    MorphemeAnalyzer().analyze_batch(sentences)
    kiwi_morphemes_s = time.perf_counter() - started

    from kosearch.encoders.precision import torch_dtype

    kosearch_encoder = Encoder(None, device="cpu", precision=precision)
    plain = SentenceTransformer(str(bundled_model_path()), device="cpu").to(torch_dtype(precision))
    prompt = kosearch_encoder.prompts.get("document", "")
    kosearch_encoder.encode_documents(sentences[:64])
    plain.encode(sentences[:64], prompt=prompt)
    rounds = {"kosearch": [], "sentence_transformers": []}
    for order in (("kosearch", "sentence_transformers"), ("sentence_transformers", "kosearch")):
        for name in order:
            started = time.perf_counter()
            if name == "kosearch":
                mine = kosearch_encoder.encode_documents(sentences)
            else:
                theirs = plain.encode(sentences, prompt=prompt, normalize_embeddings=True)
            rounds[name].append(time.perf_counter() - started)
    theirs = np.asarray(theirs, dtype=np.float32)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    agreement = float(np.min(np.sum(mine * theirs, axis=1)))

    queries = json.loads((work / "queries.json").read_text())
    query_encoder = Encoder(None, device="cpu", precision=precision)
    query_encoder.encode_queries(queries[:3])
    query_ms = []
    for query in queries:
        started = time.perf_counter()
        query_encoder.encode_queries([query])
        query_ms.append((time.perf_counter() - started) * 1000)
    return {
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
        "sample_reviews": len(sample_reviews),
        "sample_sentences": len(sentences),
        "kiwi_split_s": kiwi_split_s,
        "kiwi_morphemes_s": kiwi_morphemes_s,
        "kosearch_encode_s": rounds["kosearch"],
        "sentence_transformers_encode_s": rounds["sentence_transformers"],
        "min_cosine_kosearch_vs_plain": agreement,
        "query_encoding_p50_ms": float(np.percentile(query_ms, 50)),
        "query_encoding_p95_ms": float(np.percentile(query_ms, 95)),
    }


# -- driver -----------------------------------------------------------------------------------------


def run_phase(work: Path, phase: str, *extra: str) -> dict:
    started = time.strftime("%H:%M:%S", time.gmtime())
    load = machine_load()
    print(f"[{started} UTC, load {load}] {phase} {' '.join(extra)}", flush=True)
    result = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--work", str(work), *extra],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if result.returncode != 0:
        print(result.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"phase {phase} failed")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["started_utc"], data["load_at_start"] = started, load
    print(json.dumps({k: v for k, v in data.items() if k not in ("files", "segments")}), flush=True)
    return data


def recall_at_10(work: Path, exact: str, approximate: str) -> float:
    truth = json.loads((work / f"hits_{exact}.json").read_text())
    found = json.loads((work / f"hits_{approximate}.json").read_text())
    hits = sum(len(set(a) & set(b)) for a, b in zip(truth, found))
    return hits / max(1, sum(len(a) for a in truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, help="units to index (default: 1,000,000; with --encoder real, every review)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kosearch-bench-segments"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sample", type=int, default=400, help="NSMC reviews for the real-encoder sample")
    parser.add_argument("--encoder", choices=("hash", "real"), default="hash", help="stand-ins, or the real path")
    parser.add_argument("--precision", default="bf16", help="the real encoder's compute precision")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="flat", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phases = {
            "build": lambda: phase_build(args.work),
            "open": lambda: phase_open(args.work),
            "query": lambda: phase_query(args.work, args.label),
            "compact": lambda: phase_compact(args.work),
            "delete": lambda: phase_delete(args.work),
            "encode": lambda: phase_encode(args.work, args.sample),
        }
        print(json.dumps(phases[args.phase](), default=str))
        return

    os.environ["BENCH_ENCODER"], os.environ["BENCH_PRECISION"] = args.encoder, args.precision
    if args.units is None:
        args.units = 10**9 if args.encoder == "real" else 1_000_000  # real: every review but the held-out ones
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "command": " ".join(sys.argv),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "load_at_start": machine_load(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cores": os.cpu_count(),
        "encoder": args.encoder,
        "precision": args.precision if args.encoder == "real" else None,
    }
    results["corpus"] = prepare(args.work, args.units)
    print(json.dumps(results), flush=True)

    def save() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=str))

    results["build"] = run_phase(args.work, "build")
    save()
    results["open_flat"] = run_phase(args.work, "open")
    results["query_flat"] = run_phase(args.work, "query", "--label", "flat")
    save()
    results["compact"] = run_phase(args.work, "compact")
    save()
    results["open_ann"] = run_phase(args.work, "open")
    results["query_ann"] = run_phase(args.work, "query", "--label", "ann")
    results["query_ann"]["recall_at_10_vs_flat"] = recall_at_10(args.work, "flat", "ann")
    save()
    results["delete"] = run_phase(args.work, "delete")
    results["query_after_delete"] = run_phase(args.work, "query", "--label", "after_delete")
    save()
    results["encode"] = run_phase(args.work, "encode", "--sample", str(args.sample))
    results["finished_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    results["load_at_end"] = machine_load()
    save()
    build = results["build"]
    print(
        f"units {build['units']:,}; bytes written (wchar) / final size = {build['wchar'] / build['final_bytes']:.2f}x; "
        f"(indexing + compaction) / final after compaction = "
        f"{(build['wchar'] + results['compact']['wchar']) / results['compact']['bytes_after']:.2f}x; "
        f"peak RSS - vectors = {(build['peak_rss'] - build['vectors_bytes']) / 2**20:.0f} MiB; "
        f"open {results['open_flat']['open_s']:.2f} s, +{results['open_flat']['rss_extra_after_open'] / 2**20:.0f} MiB; "
        f"query p50 flat {results['query_flat']['p50_ms']:.1f} ms, ANN {results['query_ann']['p50_ms']:.1f} ms "
        f"(recall@10 {results['query_ann']['recall_at_10_vs_flat']:.3f})"
    )


if __name__ == "__main__":
    main()
