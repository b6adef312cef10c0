"""Paraphrase mining at scale (issue 7): the top 10,000 pairs of an index through its own HNSW
segment, against exact top pairs, next to ``sentence_transformers.util.paraphrase_mining_embeddings``.

Two modes.

``--sizes``: for each size N, an index of the first N distinct NSMC review texts with their real
bundled-encoder vectors (``KOSEARCH_NSMC_VECTORS``, see ``encode_nsmc_vectors.py``) is made through
the store's own path: one checkpoint, then ``compact()``, which builds and tunes the HNSW segment
every index above the break-even gets anyway (its time is printed apart: the index pays it once,
whether anyone mines or not). Then ``kosearch.paraphrases.mine_paraphrases`` (what ``Index.paraphrases``
and ``kosearch paraphrases`` run) mines the top 10,000 pairs at each search depth of ``--depths``,
and the reference ``util.paraphrase_mining_embeddings`` (exact: chunked matrix products) runs on
the same vectors in a subprocess killed after ``--reference-timeout`` seconds (30 minutes by
default, the issue's cap). Recall = share of the exact top 10,000 pairs that kosearch returns; the
exact pairs are the reference's, or, where it was killed, ``exact_pairs.py``'s bfloat16-select /
float32-rescore brute force (checked to equal the reference's pairs wherever the reference finished).

``--index PATH``: mine an existing index (e.g. the 1M-sentence NSMC index of ``bench_segments.py
--encoder real`` after its compaction) with the product defaults, then score the pairs against
the exact top pairs of its live distinct texts: all pairs (``--exact full``), or each vector of a
random sample against all (``--exact-sample 0.05``), which bounds the recall from below (see
``sampled_recall``).

``--index PATH --score-saved A.npz ... --saved-row A.log ...``: score answers that ``--index ...
--save-pairs`` saved (pairs, shallow pairs, refined ids; the run's log gives their scores and
times) against one scan of the sample, instead of one scan per answer inside each run.

``--vectors-from-index PATH`` (with ``--sizes``): the first N distinct texts (lowest sentence ids)
of an existing index with their stored vectors, for sizes beyond the encoded-review cache (the
1.23M-sentence NSMC index holds the same bundled encoder's vectors). ``--reference-cpu-limit``
caps the reference by CPU seconds (``RLIMIT_CPU``) instead of wall time alone, which a shared
machine inflates; ``--concurrent-reference`` runs it beside kosearch's side instead of after it
(CPU seconds are the measure then). ``--depths auto`` is the product's own depth rule
(``pair_mining.mining_ef_search``).

Both modes run everything with one thread (``OMP_NUM_THREADS=1``) and print ``uptime``'s load.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_paraphrase_mining.py --sizes 20000 50000 100000 150000
    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_paraphrase_mining.py --index runs/mine1m/index --exact-sample 0.05
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_ann.py

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exact_pairs import candidate_pairs, exact_top_pairs  # noqa: E402
from nsmc_bench_data import machine_load, read_reviews  # noqa: E402
from nsmc_vectors import base_of_size, load_real  # noqa: E402

from kosearch.paraphrases import mine_paraphrases  # noqa: E402
from kosearch.store import IndexStore, PendingChanges  # noqa: E402
from kosearch.store import pair_mining  # noqa: E402
from kosearch.store.ann import TIE_EPSILON  # noqa: E402
from kosearch.store.pair_mining import Refinement, mining_ef_search  # noqa: E402

TOP = 10_000
NEIGHBOURS = 10

REFERENCE = """
import sys, time, numpy as np, torch
from sentence_transformers import util
torch.set_num_threads(1)
vectors = torch.from_numpy(np.load(sys.argv[1]))
started, cpu = time.perf_counter(), time.process_time()
pairs = util.paraphrase_mining_embeddings(vectors, top_k=int(sys.argv[3]), max_pairs=int(sys.argv[4]))
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
np.save(sys.argv[2], np.array([[min(i, j), max(i, j)] for _, i, j in pairs], dtype=np.int64).reshape(-1, 2))
print(seconds, cpu)
"""


def distinct_reviews() -> tuple[list[str], np.ndarray]:
    """Texts and vectors of the first occurrence of each encoded review text (copies would tie at 1.0)."""
    real = load_real()
    texts = [text for _, text in read_reviews(len(real))]
    seen: set[str] = set()
    keep = [i for i, text in enumerate(texts) if not (text in seen or seen.add(text))]
    return [texts[i] for i in keep], np.ascontiguousarray(real[keep])


def make_index(folder: Path, texts: list[str], vectors: np.ndarray) -> tuple[IndexStore, float]:
    """An index of ``texts`` (sentence ids 1..N) compacted as any index is; returns it and compaction's seconds."""
    store = IndexStore.create(folder, {"model": "bench/nsmc-real", "fingerprint": "bench", "dimension": vectors.shape[1],
                                       "prompts": {}})
    ids = np.arange(1, len(texts) + 1, dtype=np.int64)
    store.add_vectors(ids, vectors)
    store.checkpoint(PendingChanges(
        documents=[{"id": 1, "root": "/nsmc", "path": "reviews.txt", "sha256": "x", "size": 1, "encoding": "utf-8",
                    "format": "txt", "sentences": len(texts), "indexed_at": "now"}],
        sentences=[{"id": int(i), "document_id": 1, "position": p, "text": t, "line": p + 1, "start": 0, "end": len(t)}
                   for p, (i, t) in enumerate(zip(ids, texts))],
        removed_documents=[],
    ))
    started = time.perf_counter()
    store.compact()
    return store, time.perf_counter() - started


CPU_SECONDS: dict[str, float] = {}
"""Process CPU seconds of the last ``mine`` / reference run: with one thread each, the work done,
which a machine shared with other jobs inflates far less than wall time."""


class RefinementRecorder(logging.Handler):
    """Keeps the ``Refinement`` that ``pair_mining.refine_pairs`` logs: its seconds, texts, rounds,
    and the shallow pass's own top pairs (so one exact check scores both passes)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: Refinement | None = None
        logger = logging.getLogger("kosearch.store.pair_mining")
        logger.setLevel(logging.INFO)
        logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(getattr(record, "refinement", None), Refinement):
            self.last = record.refinement


REFINEMENTS = RefinementRecorder()


def mine(store: IndexStore, depth: int | str | None, refine: bool = True) -> tuple[float, list[tuple[int, int]], float]:
    """Seconds, pairs (sentence ids, smaller first) and the last pair's score of the product's mining
    at shallow depth ``depth`` ("auto" or None: the product's rule, ``mining_ef_search``)."""
    REFINEMENTS.last = None
    started, cpu = time.perf_counter(), time.process_time()
    pairs = mine_paraphrases(store, top=TOP, neighbours=NEIGHBOURS, ef_search=None if depth == "auto" else depth,
                             refine=refine)
    seconds = time.perf_counter() - started
    CPU_SECONDS["kosearch"] = time.process_time() - cpu
    return seconds, [(p.a.sentence_id, p.b.sentence_id) for p in pairs], pairs[-1].score


class Reference:
    """``util.paraphrase_mining_embeddings`` on ``vectors`` in a one-thread subprocess, started at
    construction; ``result`` waits for it. Killed after ``timeout`` wall seconds or, with
    ``cpu_limit``, when it has used that many CPU seconds (``RLIMIT_CPU``: the kernel sends SIGXCPU)."""

    def __init__(self, vectors: np.ndarray, timeout: float, cpu_limit: float | None = None) -> None:
        self.folder = tempfile.TemporaryDirectory()
        source, self.target = Path(self.folder.name) / "v.npy", Path(self.folder.name) / "pairs.npy"
        np.save(source, vectors)
        env = dict(os.environ, OMP_NUM_THREADS="1")

        def limit_cpu() -> None:
            if cpu_limit is not None:
                import resource

                resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_limit), int(cpu_limit) + 10))

        self.timeout = timeout
        self.children_cpu = _children_cpu()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-c", REFERENCE, str(source), str(self.target), str(NEIGHBOURS), str(TOP)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=limit_cpu)
        self.ended = "running"
        """How it ended: "finished", "wall timeout", "CPU limit" or "failed (...)"."""

    def result(self) -> tuple[float | None, set | None]:
        try:
            left = max(self.timeout - (time.perf_counter() - self.started), 1.0)
            out, err = self.process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            self.ended = "wall timeout"
        else:
            if self.process.returncode == 0:
                self.ended = "finished"
            elif self.process.returncode == -24:  # SIGXCPU
                self.ended = "CPU limit"
            else:
                self.ended = f"failed ({self.process.returncode}: {err.strip().splitlines()[-1:]})"
        # its CPU seconds whether it finished or was killed (no other child ends meanwhile)
        CPU_SECONDS["reference_used"] = _children_cpu() - self.children_cpu
        CPU_SECONDS["reference_wall"] = time.perf_counter() - self.started
        try:
            if self.ended != "finished":
                return None, None
            pairs = np.load(self.target)
            seconds, cpu = out.strip().splitlines()[-1].split()
            CPU_SECONDS["reference"] = float(cpu)
            return float(seconds), set(map(tuple, pairs.tolist()))
        finally:
            self.folder.cleanup()


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_reference(vectors: np.ndarray, timeout: float, cpu_limit: float | None = None) -> tuple[float | None, set | None]:
    return Reference(vectors, timeout, cpu_limit).result()


def index_distinct_texts(path: Path, size: int) -> tuple[list[str], np.ndarray]:
    """Texts and stored vectors of the first ``size`` distinct texts (lowest sentence ids) of an index."""
    store = IndexStore.open(path)
    try:
        representatives = np.sort(np.array([rep for rep, _ in store.duplicate_groups()], dtype=np.int64))[:size]
        if len(representatives) < size:
            raise SystemExit(f"{path} holds only {len(representatives)} distinct texts")
        vectors = np.zeros((size, int(store.manifest["dimension"])), dtype=np.float32)
        for ids, batch in store.iter_vectors(65536):
            position = np.searchsorted(representatives, ids)
            keep = (position < size) & (representatives[np.minimum(position, size - 1)] == ids)
            vectors[position[keep]] = batch[keep]
        texts = []
        for start in range(0, size, 50_000):
            chunk = representatives[start : start + 50_000].tolist()
            rows = store.units_by_id(chunk)
            texts.extend(rows[i].text for i in chunk)
        return texts, vectors
    finally:
        store.close()


def sizes_mode(args: argparse.Namespace) -> None:
    if args.vectors_from_index:
        texts, pool = index_distinct_texts(args.vectors_from_index, max(args.sizes))
        print(f"# the first {len(pool)} distinct texts of {args.vectors_from_index.name}; {machine_load()}", flush=True)
    else:
        texts, pool = distinct_reviews()
        print(f"# {len(pool)} distinct real review vectors; {machine_load()}", flush=True)
    rows = []
    for size in args.sizes:
        if size > len(pool) and not args.extend:
            print(f"  skip {size}: only {len(pool)} distinct encoded reviews (--extend: synthetic rest)", flush=True)
            continue
        vectors, real = base_of_size(pool, size)
        size_texts = texts[:real] + [f"(synthetic vector {k})" for k in range(size - real)]
        row: dict = {"size": size, "real": real, "load_start": machine_load()}
        reference = None
        if args.concurrent_reference and size <= args.full_exact_up_to:
            reference = Reference(vectors, args.reference_timeout, args.reference_cpu_limit)
            row["reference_started"] = time.strftime("%H:%M:%S", time.gmtime())
        with tempfile.TemporaryDirectory(dir=args.work) as folder:
            cpu = time.process_time()
            store, row["compact_s"] = make_index(Path(folder) / "idx", size_texts, vectors)
            row["compact_cpu_s"] = round(time.process_time() - cpu, 1)
            row["segment"] = [(e.factory, e.count) for e in store.segment_entries()]
            row["auto_efSearch"] = mining_ef_search(size)
            mined, shallow_pairs = {}, {}
            for depth in args.depths:
                seconds, pairs, last = mine(store, depth)
                mined[depth] = (seconds, {(a - 1, b - 1) for a, b in pairs}, last)  # ids are positions + 1
                row[f"cpu_s_ef{depth}"] = round(CPU_SECONDS["kosearch"], 1)
                row[f"load_after_ef{depth}"] = machine_load()
                if REFINEMENTS.last is not None:  # the same run's shallow pass alone, scored below too
                    refinement = REFINEMENTS.last
                    first, second, scores = refinement.shallow
                    shallow_pairs[depth] = ({(int(a) - 1, int(b) - 1) for a, b in zip(first, second)}, float(scores[-1]))
                    row[f"refine_s_ef{depth}"] = round(refinement.seconds, 1)
                    row[f"refined_texts_ef{depth}"] = refinement.texts
                print(f"  {size}: efSearch {depth}: {seconds:.1f}s ({CPU_SECONDS['kosearch']:.1f} CPU s)", flush=True)
            store.close()
        if size > args.full_exact_up_to:  # no reference, no full brute force: a sampled lower bound
            chosen = mined.get("auto") or next(iter(mined.values()))
            row["reference_s"] = None
            row["sampled"] = sampled_recall(np.arange(size), vectors, chosen[1], chosen[2], args.exact_sample)
            row["depths"] = {depth: {"mine_s": round(sec, 1), "recall": None} for depth, (sec, _, _) in mined.items()}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        if reference is None:
            reference = Reference(vectors, args.reference_timeout, args.reference_cpu_limit)
        seconds, truth = reference.result()
        row["reference_s"] = round(seconds, 1) if seconds is not None else None
        row["reference_cpu_s"] = round(CPU_SECONDS["reference"], 1) if seconds is not None else None
        row["reference_ended"] = reference.ended
        row["reference_cpu_used_s"] = round(CPU_SECONDS["reference_used"], 1)
        row["reference_wall_s"] = round(CPU_SECONDS["reference_wall"], 1)
        row["load_after_reference"] = machine_load()
        floor = min([last for _, _, last in mined.values()] + [last for _, last in shallow_pairs.values()]) - 0.01
        if truth is not None and size <= args.check_bf16_up_to:
            started = time.perf_counter()
            row["bf16_exact_equals_reference"] = exact_top_pairs(vectors, TOP, floor) == truth
            row["bf16_exact_s"] = round(time.perf_counter() - started, 1)
        elif truth is None:
            started = time.perf_counter()
            truth = exact_top_pairs(vectors, TOP, floor)
            row["bf16_exact_s"] = round(time.perf_counter() - started, 1)
        row["depths"] = {depth: {"mine_s": round(s, 1), "recall": round(len(p & truth) / len(truth), 4)}
                         for depth, (s, p, _) in mined.items()}
        for depth, (pairs, _) in shallow_pairs.items():
            row["depths"][depth]["shallow_recall"] = round(len(pairs & truth) / len(truth), 4)
        row["load_end"] = machine_load()
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n# {machine_load()}; top {TOP} pairs, {NEIGHBOURS} neighbours, 1 thread each")
    print("| N distinct | compaction (HNSW build + tuning, paid by the index) s | reference s | "
          + " | ".join(f"kosearch efSearch {d} s (recall)" for d in args.depths)
          + " | speed-up at the product's depth (wall) | CPU s: reference / kosearch (ratio) |")
    print("|---" * (5 + len(args.depths)) + "|")
    for r in rows:
        ref = r["reference_s"]
        cells = [f"{r['depths'][d]['mine_s']} ({r['depths'][d]['recall']})" for d in args.depths]
        if "sampled" in r:
            cells[-1] += f" [sampled recall >= {r['sampled']['recall_lower_95']}]"
        chosen_depth = "auto" if "auto" in r["depths"] else mining_ef_search(r["size"])
        chosen = r["depths"].get(chosen_depth)
        speed = (f"{ref / chosen['mine_s']:.1f}x" if ref and chosen else
                 f"> {args.reference_timeout / chosen['mine_s']:.0f}x" if chosen else "")
        mine_cpu, ref_cpu = r.get(f"cpu_s_ef{chosen_depth}"), r.get("reference_cpu_s")
        cpu = f"{ref_cpu} / {mine_cpu} ({ref_cpu / mine_cpu:.1f}x)" if ref_cpu and mine_cpu else ""
        print(f"| {r['size']:,} | {r['compact_s']:.1f} | {ref if ref is not None else f'> {args.reference_timeout:.0f} (killed)'} | "
              + " | ".join(cells) + f" | {speed} | {cpu} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def live_distinct_vectors(store: IndexStore) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of the live distinct texts (each text's lowest sentence id), as mining sees them."""
    representatives = np.array([rep for rep, _ in store.duplicate_groups()], dtype=np.int64)
    id_parts, vector_parts = [], []
    for ids, vectors in store.iter_vectors(65536):
        keep = np.isin(ids, representatives)
        id_parts.append(ids[keep])
        vector_parts.append(vectors[keep])
    return np.concatenate(id_parts), np.concatenate(vector_parts)


def sampled_rows(count: int, fraction: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, int(round(fraction * count)), replace=False))


def sampled_recall(ids, vectors, found: set, floor: float, fraction: float, seed: int = 0,
                   candidates: tuple | None = None, refined: set | None = None) -> dict:
    """A lower bound on recall from each vector of a random sample against all.

    Every exact top pair the mining missed is a k-NN pair (one side among the other's 10 nearest)
    scoring at least ``floor`` (the mining's own 10,000th score; the exact 10,000th is at least that
    when the mined pairs are k-NN pairs, which is checked on the sampled ones) and not mined. A pair
    is seen when either side is sampled (probability 2p - p^2); a sampled vector's row is complete,
    and the partners of its unmined pairs get their full rows too, so each seen pair's k-NN status is
    exact. Missed <= M_seen / (2p - p^2) in expectation; recall >= 1 - that / 10,000.

    ``candidates``: the sample's ``candidate_pairs`` already scanned (same ``fraction`` and ``seed``)
    at a floor at most ``floor``, so that scoring two answers costs one scan.
    """
    from exact_pairs import knn_eligible

    rows = sampled_rows(len(ids), fraction, seed)
    started = time.perf_counter()
    i, j, scores = candidates if candidates is not None else candidate_pairs(vectors, floor, rows=rows)
    keep = scores >= floor
    i, j, scores = i[keep], j[keep], scores[keep]
    pair_of = lambda a, b: (min(int(ids[a]), int(ids[b])), max(int(ids[a]), int(ids[b])))  # noqa: E731 - ids need not be sorted
    mined = np.array([pair_of(a, b) in found for a, b in zip(i, j)], dtype=bool)
    partners = np.setdiff1d(np.concatenate([i[~mined], j[~mined]]), rows)
    if len(partners):  # complete the rows of the unsampled sides, so every pair's k-NN status is exact
        pi, pj, ps = candidate_pairs(vectors, floor, rows=partners)
        keep = ps >= floor
        both = np.unique(np.stack([np.concatenate([i, pi[keep]]), np.concatenate([j, pj[keep]])], 1), axis=0)
        all_i, all_j = both[:, 0], both[:, 1]
        all_s = np.einsum("nd,nd->n", vectors[all_i], vectors[all_j])
    else:
        all_i, all_j, all_s = i, j, scores
    eligible = knn_eligible(all_i, all_j, all_s, NEIGHBOURS)
    seen = np.isin(all_i, rows) | np.isin(all_j, rows)
    seen_pairs = [pair_of(a, b) for a, b in zip(all_i[seen & eligible], all_j[seen & eligible])]
    seen_missed = sum(pair not in found for pair in seen_pairs)
    ends_refined = None
    if refined is not None:  # missed pairs by how many of their texts the refining pass touched: 0, 1, 2
        ends_refined = [0, 0, 0]
        for pair in seen_pairs:
            if pair not in found:
                ends_refined[(pair[0] in refined) + (pair[1] in refined)] += 1
    mined_seen = [pair_of(a, b) for a, b in zip(all_i[seen], all_j[seen])]
    mined_not_knn = sum(pair in found for pair in mined_seen) - sum(pair in found for pair in seen_pairs)
    seen_probability = 2 * fraction - fraction**2
    missed = seen_missed / seen_probability
    upper = (seen_missed + 2 * np.sqrt(seen_missed) + 1) / seen_probability

    # Ties. Near-duplicate clusters put many scores within float32 rounding of each other, where
    # which 10 neighbours a text keeps (here, in FAISS, in torch.topk) is arbitrary. A missed pair is
    # a *strict* miss when it scores above the floor by more than TIE_EPSILON and one side has it
    # among its 10 best even if every score within TIE_EPSILON of it counted as better (the rule of
    # recall with ties, kosearch.store.ann.recall_at_k); the others were decided by a tie.
    side = np.concatenate([all_i, all_j])
    doubled = np.concatenate([all_s, all_s])
    strict_missed, strict_ends = 0, [0, 0, 0]
    for a, b, score, is_seen, is_eligible in zip(all_i, all_j, all_s, seen, eligible):
        pair = pair_of(a, b)
        if not (is_seen and is_eligible) or pair in found or score < floor + TIE_EPSILON:
            continue
        near_a = int(np.sum(doubled[side == a] >= score - TIE_EPSILON)) - 1  # others at least as good, ties included
        near_b = int(np.sum(doubled[side == b] >= score - TIE_EPSILON)) - 1
        if near_a < NEIGHBOURS or near_b < NEIGHBOURS:
            strict_missed += 1
            if refined is not None:
                strict_ends[(pair[0] in refined) + (pair[1] in refined)] += 1
    strict_upper = (strict_missed + 2 * np.sqrt(strict_missed) + 1) / seen_probability
    return {"sample": len(rows), "fraction": fraction, "exact_s": round(time.perf_counter() - started, 1),
            "knn_pairs_above_floor_seen": len(seen_pairs), "missed_seen": seen_missed,
            "mined_seen_not_knn": mined_not_knn, "recall_estimate": round(1 - missed / TOP, 4),
            "recall_lower_95": round(1 - upper / TOP, 4),
            **({"missed_seen_by_refined_ends": ends_refined} if ends_refined is not None else {}),
            "strict_missed_seen": strict_missed,
            "recall_with_ties_estimate": round(1 - strict_missed / seen_probability / TOP, 4),
            "recall_with_ties_lower_95": round(1 - strict_upper / TOP, 4),
            **({"strict_missed_seen_by_refined_ends": strict_ends} if refined is not None else {})}


def index_mode(args: argparse.Namespace) -> None:
    print(f"# {args.index}; {machine_load()}", flush=True)
    store = IndexStore.open(args.index)
    entries = [(e.factory, e.count) for e in store.segment_entries()]
    row: dict = {"index": str(args.index), "live": store.count(), "deleted": store.deleted_count(), "segments": entries,
                 "load_start": machine_load()}
    print(json.dumps(row), flush=True)
    seconds, pairs, last = mine(store, args.depth)
    refinement = REFINEMENTS.last
    row.update(mine_s=round(seconds, 1), mine_cpu_s=round(CPU_SECONDS["kosearch"], 1), efSearch=args.depth or mining_ef_search(len(store.duplicate_groups())),
               refine_efSearch=pair_mining.REFINE_EF_SEARCH or "tuned", pairs=len(pairs), last_score=last,
               load_after_mining=machine_load())
    shallow = None
    if refinement is not None:  # the same run's shallow pass alone: its pairs, its time (total - refining)
        first, second, scores = refinement.shallow
        shallow = ({(int(a), int(b)) for a, b in zip(first, second)}, float(scores[-1]))
        row.update(shallow_s=round(seconds - refinement.seconds, 1), refine_s=round(refinement.seconds, 1),
                   refined_texts=refinement.texts, refine_rounds=refinement.rounds,
                   refine_complete=refinement.complete, shallow_last_score=shallow[1])
    print(json.dumps(row), flush=True)
    found = set(pairs)
    if args.save_pairs:
        extra = {} if shallow is None else {"shallow": np.array(sorted(shallow[0]), dtype=np.int64),
                                            "refined_ids": refinement.refined}
        np.savez(args.save_pairs, pairs=np.array(pairs, dtype=np.int64), **extra)
    ids, vectors = live_distinct_vectors(store)
    row["distinct"] = len(ids)
    if args.exact == "full":
        started = time.perf_counter()
        floor = min(last, shallow[1]) if shallow else last
        truth = {(min(int(ids[a]), int(ids[b])), max(int(ids[a]), int(ids[b])))  # segment order need not be id order
                 for a, b in exact_top_pairs(vectors, TOP, floor - 0.01)}
        row.update(exact_s=round(time.perf_counter() - started, 1), recall=round(len(found & truth) / TOP, 4))
        if shallow:
            row["shallow_recall"] = round(len(shallow[0] & truth) / TOP, 4)
    else:
        floor = min(last, shallow[1]) if shallow else last
        started = time.perf_counter()
        candidates = candidate_pairs(vectors, floor, rows=sampled_rows(len(ids), args.exact_sample))
        row["exact_scan_s"] = round(time.perf_counter() - started, 1)
        refined = set(refinement.refined.tolist()) if refinement is not None else None
        score_sample(row, ids, vectors, found, last, shallow, refined, args.exact_sample, candidates)
    row["load_end"] = machine_load()
    print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(row, indent=1))


def score_sample(row: dict, ids: np.ndarray, vectors: np.ndarray, found: set, last: float, shallow: tuple | None,
                 refined: set | None, fraction: float, candidates: tuple) -> None:
    """``row`` gains the sampled recall of the mined pairs and (``shallow``: pairs, last score) of the
    shallow pass alone, both from the one scan ``candidates``."""
    row.update(sampled_recall(ids, vectors, found, last, fraction, candidates=candidates, refined=refined))
    if shallow:
        row["shallow"] = sampled_recall(ids, vectors, shallow[0], shallow[1], fraction, candidates=candidates,
                                        refined=refined)


def mined_row(path: Path) -> dict:
    """The row an ``--index`` run printed after mining (a JSON file, or the last such line of its log)."""
    text = path.read_text()
    if text.lstrip().startswith("{") and text.count("\n{") == 0:
        return json.loads(text)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if "mine_s" in line][-1]


def score_saved_mode(args: argparse.Namespace) -> None:
    """Score mining answers saved by ``--index ... --save-pairs`` against one scan of the sample (the
    scan is most of a check's time, and every answer of one index uses the same sample)."""
    if len(args.saved_row) != len(args.score_saved):
        raise SystemExit("give one --saved-row (the run's log or JSON) per --score-saved file")
    print(f"# {args.index}; {machine_load()}", flush=True)
    runs = [(Path(pairs), mined_row(Path(log))) for pairs, log in zip(args.score_saved, args.saved_row)]
    store = IndexStore.open(args.index)
    ids, vectors = live_distinct_vectors(store)
    floor = min(min(row["last_score"], row.get("shallow_last_score", row["last_score"])) for _, row in runs)
    cache = args.candidates_cache
    started = time.perf_counter()
    if cache is not None and cache.exists():  # an earlier scan of the same sample at a floor no higher
        saved = np.load(cache)
        if float(saved["floor"]) > floor or float(saved["fraction"]) != args.exact_sample or int(saved["count"]) != len(ids):
            raise SystemExit(f"{cache} was scanned for another sample or at a higher floor")
        candidates, floor = (saved["i"], saved["j"], saved["scores"]), float(saved["floor"])
    else:
        floor = min(floor, args.scan_floor) if args.scan_floor is not None else floor
        candidates = candidate_pairs(vectors, floor, rows=sampled_rows(len(ids), args.exact_sample))
        if cache is not None:
            np.savez(cache, i=candidates[0], j=candidates[1], scores=candidates[2], floor=floor,
                     fraction=args.exact_sample, count=len(ids))
    scan_s = round(time.perf_counter() - started, 1)
    for (pairs_path, row), target in zip(runs, args.json_each or [None] * len(runs)):
        saved = np.load(pairs_path)
        found = set(map(tuple, saved["pairs"].tolist()))
        shallow = None
        if "shallow" in saved:
            shallow = (set(map(tuple, saved["shallow"].tolist())), row["shallow_last_score"])
        refined = set(saved["refined_ids"].tolist()) if "refined_ids" in saved else None
        row.update(distinct=len(ids), exact_scan_s=scan_s, exact_scan_floor=floor, scored_later=True)
        score_sample(row, ids, vectors, found, row["last_score"], shallow, refined, args.exact_sample, candidates)
        row["load_end"] = machine_load()
        print(json.dumps(row), flush=True)
        if target:
            Path(target).write_text(json.dumps(row, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--depths", type=lambda d: d if d == "auto" else int(d), nargs="+", default=[16, 32, 64],
                        help='shallow efSearch values to mine at; "auto": the product\'s rule (mining_ef_search)')
    parser.add_argument("--vectors-from-index", type=Path, default=None,
                        help="--sizes: the first N distinct texts of this index, with its stored vectors")
    parser.add_argument("--reference-cpu-limit", type=float, default=None,
                        help="also kill the reference after this many CPU seconds (RLIMIT_CPU)")
    parser.add_argument("--concurrent-reference", action="store_true",
                        help="run the reference beside kosearch's side instead of after it")
    parser.add_argument("--reference-timeout", type=float, default=1800.0)
    parser.add_argument("--check-bf16-up-to", type=int, default=200_000,
                        help="check exact_pairs.py against the reference's pairs at sizes up to this")
    parser.add_argument("--work", type=Path, default=None, help="folder for the temporary indexes")
    parser.add_argument("--extend", action="store_true",
                        help="sizes beyond the encoded reviews: nsmc_vectors' labelled synthetic extension")
    parser.add_argument("--full-exact-up-to", type=int, default=300_000,
                        help="above this size no reference and no full exact answer: --exact-sample's bound")
    parser.add_argument("--index", type=Path, help="mine this existing index instead")
    parser.add_argument("--depth", type=int, default=None, help="--index: efSearch (default: the product's)")
    parser.add_argument("--refine-depth", type=int, default=None,
                        help="efSearch of the refining pass (default: the product's, the segments' tuned one)")
    parser.add_argument("--exact", choices=["full", "sample"], default="sample")
    parser.add_argument("--exact-sample", type=float, default=0.05)
    parser.add_argument("--json", type=Path, help="write the result here (--sizes: the list of rows; --index: the row)")
    parser.add_argument("--save-pairs", type=Path, help="--index: write the mined (and shallow) pairs to this .npz")
    parser.add_argument("--score-saved", nargs="+", default=None,
                        help="--index: score these --save-pairs files instead of mining (one sample scan for all)")
    parser.add_argument("--saved-row", nargs="+", default=[],
                        help="--score-saved: each file's run log (or row JSON), for its scores and times")
    parser.add_argument("--json-each", nargs="+", default=None, help="--score-saved: one JSON output per file")
    parser.add_argument("--candidates-cache", type=Path, default=None,
                        help="--score-saved: keep the sample's scan in this .npz (reused when it exists)")
    parser.add_argument("--scan-floor", type=float, default=None,
                        help="--score-saved: scan down to this score at least (so a later answer can reuse it)")
    args = parser.parse_args()
    if args.refine_depth is not None:
        pair_mining.REFINE_EF_SEARCH = args.refine_depth
    if args.index and args.score_saved:
        score_saved_mode(args)
    elif args.index:
        index_mode(args)
    elif args.sizes:
        sizes_mode(args)
    else:
        parser.error("give --sizes or --index")


if __name__ == "__main__":
    main()
