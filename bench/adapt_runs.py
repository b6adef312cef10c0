"""Does ``kosearch train adapt`` help in-domain? Before/after retrieval, KorSTS and minutes, per budget: one command.

For each development set and each budget (minutes of the whole ``train adapt`` command) this

1. builds the set from the data at hand, the adaptation folder apart from the evaluation's queries (below);
2. evaluates the base encoder: nDCG@10 / MRR@10 / Recall through a temporary kosearch index, dense and
   hybrid (:func:`kosearch.evaluate.evaluate_retrieval_modes`, what ``kosearch evaluate retrieval --mode``
   runs), KorSTS test cosine Spearman on the query side (``kosearch evaluate sts``'s default, the e5 card's
   measure) and the document side (how kosearch stores text), and for NSMC k-NN sentiment accuracy;
3. runs ``python -m kosearch train adapt --documents FOLDER --max-minutes B`` per budget, in a subprocess
   (as a user would, with this checkout on ``PYTHONPATH``). ``train adapt`` trains the encoder only with
   ``--fine-tune`` (its default, the folder's token weights and a linear map, takes minutes whatever the budget):
   pass ``--train-arg=--fine-tune`` to measure the training budgets;
4. evaluates every adapted model the same way; with ``--map-on-top``, also fits ``train adapt``'s linear map on
   each adapted model (``train adapt --model ADAPTED --no-word-weights`` plus ``--map-arg``, the same budget),
   which must have none yet (``--train-arg=--fine-tune`` or ``--train-arg=--no-linear-map``), and evaluates that;
5. writes ``OUT/adapt_runs.json`` and ``OUT/adapt_runs.md`` (the table for docs/training.md), each step with
   its start and end time (UTC) and the load average around it.

Every step's result is saved in ``OUT/steps/<step>.json`` as soon as it finishes and skipped when it is there,
so a killed run continues where it stopped (an interrupted ``train adapt`` is continued with ``--resume``).

The sets (no label reaches training; the adaptation folder is what a user would have: the domain's text):

- ``chatbot`` (songys' chatbot Q/A): the adaptation folder holds every distinct *answer* as its own paragraph
  (the corpus a user would index), and nothing else; the evaluation asks a sample of the *questions*
  (never written to the folder) for their answers among all distinct answers, as ``bench/build_devsets.py``'s
  chatbot set. Questions and the Q->A pairing are the labels; training sees neither.
- ``nsmc`` (Naver movie reviews), "which movie is this review about": NSMC has no questions, but every review
  carries its movie id, which is not a sentiment label and which the recipe never sees. A sample of movies with
  enough reviews is held out entirely; for each, one review (at least ``NSMC_QUERY_MIN_CHARS`` characters) is
  the query and up to ``NSMC_DOC_REVIEWS`` other reviews of the same movie, joined, are its one relevant
  document (the movie's review page); every held-out movie is one document of the corpus. Queries must match on
  what people say about a film (titles, actors, plot, genre), not on sentiment, so it is a retrieval task that
  the in-batch contrastive recipe is not trained for directly. The adaptation folder holds reviews of *other*
  movies only (one per paragraph), so neither the queries nor the judged documents are trained on; it measures
  whether learning the domain's language transfers. k-NN sentiment (``kosearch.evaluate.knn``) is scored on
  reviews outside the adaptation folder too.

Usage (the measurement for docs/training.md; an idle machine, hours)::

    OMP_NUM_THREADS=2 PYTHONPATH=. python bench/adapt_runs.py --out runs/adapt --budgets 15 30 60 --sets chatbot nsmc

Smoke run (minutes; numbers not comparable with the budget runs)::

    PYTHONPATH=. python bench/adapt_runs.py --out runs/adapt-smoke --budgets 3 --sets chatbot --chatbot-queries 300
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from kosearch.data.beir import BeirDataset, CorpusDocument, write_beir  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from build_devsets import chatbot_retrieval  # noqa: E402

ANSWERS_PER_FILE = 500
NSMC_DOC_REVIEWS = 10
NSMC_QUERY_MIN_CHARS = 20
MODES = ("dense", "hybrid")


# ----------------------------------------------------------------------------------------------- the sets


def chatbot_set(rows: Sequence[tuple[str, str]], queries_wanted: int, seed: int) -> tuple[BeirDataset, list[str]]:
    """The question -> answer set (``build_devsets.chatbot_retrieval``) and the adaptation texts: the distinct
    answers, nothing else.

    A question whose text is also an answer (a greeting answered by the same greeting) would reach training
    as a passage of the folder, so it is left out of the evaluation (3 of the 1,500 sampled questions)."""
    dataset = chatbot_retrieval(list(rows), queries_wanted, seed)
    texts = [document.text for document in dataset.corpus.values()]
    answers = set(texts)
    dropped = [query for query, text in dataset.queries.items() if text in answers]
    for query in dropped:
        del dataset.queries[query]
        dataset.qrels.pop(query, None)
    if dropped:
        dataset.notes.append(f"{len(dropped)} sampled questions left out: their text is also an answer of the corpus")
    return dataset, texts


def nsmc_set(
    rows: Iterable[tuple[str, str]], *, movies: int, adapt_reviews: int, seed: int
) -> tuple[BeirDataset, list[str]]:
    """The "which movie" set over ``movies`` held-out movies, and up to ``adapt_reviews`` reviews of other movies.

    ``rows``: (movie id, review) in file order. See the module docstring for why this task and this split.
    """
    by_movie: dict[str, list[str]] = {}
    seen: set[str] = set()
    for movie, review in rows:
        review = review.strip()
        if not review or review in seen:
            continue
        seen.add(review)
        by_movie.setdefault(movie, []).append(review)
    rng = random.Random(seed)
    eligible = sorted(
        movie for movie, reviews in by_movie.items()
        if len(reviews) > NSMC_DOC_REVIEWS and any(len(r) >= NSMC_QUERY_MIN_CHARS for r in reviews)
    )
    held_out = rng.sample(eligible, min(movies, len(eligible)))
    corpus: dict[str, CorpusDocument] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for movie in sorted(held_out):
        reviews = list(by_movie[movie])
        rng.shuffle(reviews)
        query = next(r for r in reviews if len(r) >= NSMC_QUERY_MIN_CHARS)
        page = [r for r in reviews if r != query][:NSMC_DOC_REVIEWS]
        doc_id = f"m{movie}"
        corpus[doc_id] = CorpusDocument(id=doc_id, text="\n".join(page), line=len(corpus) + 1)
        query_id = f"q{len(queries) + 1}"
        queries[query_id] = query
        qrels[query_id] = {doc_id: 1}
    held = set(held_out)
    others = [review for movie, reviews in by_movie.items() if movie not in held for review in reviews]
    rng.shuffle(others)
    dataset = BeirDataset(corpus=corpus, queries=queries, qrels=qrels, name="nsmc-movies")
    return dataset, others[:adapt_reviews]


def write_adaptation_folder(texts: Sequence[str], folder: Path, per_file: int = ANSWERS_PER_FILE) -> int:
    """``texts`` as .txt files, one paragraph each (a blank line between), so each stays its own passage."""
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for start in range(0, len(texts), per_file):
        chunk = [" ".join(text.split()) for text in texts[start : start + per_file]]
        (folder / f"part{files + 1:04d}.txt").write_text("\n\n".join(chunk) + "\n", encoding="utf-8")
        files += 1
    return files


def _chatbot_rows() -> list[tuple[str, str]]:
    with open(DATA / "chatbot" / "ChatbotData.csv", encoding="utf-8", newline="") as handle:
        return [(row["Q"], row["A"]) for row in csv.DictReader(handle)]


def _nsmc_rows() -> Iterable[tuple[str, str]]:
    with gzip.open(DATA / "nsmc" / "nsmc_reviews.tsv.gz", "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        movie, review = header.index("movie_id"), header.index("review")
        for row in reader:
            if len(row) > max(movie, review):
                yield row[movie], row[review]


# ----------------------------------------------------------------------------------------------- the steps


class Steps:
    """Runs named steps once: each result is saved as ``folder/<name>.json`` and read back on a later run."""

    def __init__(self, folder: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.folder = folder
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / (name.replace("/", "__") + ".json")

    def run(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.path(name)
        if path.is_file():
            print(f"[skip] {name}: done in an earlier run ({path})", flush=True)
            return json.loads(path.read_text(encoding="utf-8"))
        print(f"[step] {name} ...", flush=True)
        started, load_before = self.clock(), os.getloadavg()
        result = work()
        record = {
            "step": name,
            "started": started.isoformat(timespec="seconds"),
            "finished": self.clock().isoformat(timespec="seconds"),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            **result,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)  # a killed step leaves no half-written result behind
        print(f"[done] {name} ({record['started']} -> {record['finished']})", flush=True)
        return record


def build_set(name: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    if name == "chatbot":
        dataset, texts = chatbot_set(_chatbot_rows(), args.chatbot_queries, args.seed)
    elif name == "nsmc":
        dataset, texts = nsmc_set(_nsmc_rows(), movies=args.nsmc_movies, adapt_reviews=args.nsmc_adapt, seed=args.seed)
    else:
        raise SystemExit(f"unknown set {name!r}; choose chatbot or nsmc")
    write_beir(dataset, folder / "beir")
    files = write_adaptation_folder(texts, folder / "adapt_docs")
    query_texts = set(dataset.queries.values())
    leaked = sum(text in query_texts for text in texts)
    if leaked:
        raise SystemExit(f"{name}: {leaked} evaluation queries are in the adaptation folder")
    return {
        "queries": len(dataset.queries), "corpus": len(dataset.corpus), "adaptation_texts": len(texts),
        "adaptation_files": files, "queries_in_adaptation_folder": leaked,
    }


def evaluate_model(model: str, set_name: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Retrieval per mode on the set; for NSMC also k-NN sentiment on reviews outside the adaptation folder."""
    from kosearch.evaluate import evaluate_retrieval_modes

    results = evaluate_retrieval_modes(model, folder / "beir", list(MODES))
    retrieval = {result.mode or mode: result.to_dict() for result, mode in zip(results, MODES)}
    out: dict[str, Any] = {"model": model, "retrieval": retrieval}
    if set_name == "nsmc":
        out["knn_accuracy"] = nsmc_knn(model, folder)
    return out


def nsmc_knn(model: str, folder: Path) -> float:
    """NSMC k-NN sentiment accuracy on reviews outside the set's adaptation folder and queries (train 2,000,
    test 1,000, k 10, seed 0): what an adapted model keeps of the base's general use on the domain's text."""
    from kosearch.evaluate.knn import knn_accuracy, nsmc_sentiment_split

    trained_on = [line for path in sorted((folder / "adapt_docs").glob("*.txt"))
                  for line in path.read_text(encoding="utf-8").split("\n\n") if line.strip()]
    lines = (folder / "beir" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(line)["text"] for line in lines]
    split = nsmc_sentiment_split(
        DATA / "nsmc" / "nsmc_reviews.tsv.gz", train=2000, test=1000, exclude=[*trained_on, *queries], seed=0
    )
    return knn_accuracy(model, split, k=10).accuracy


def evaluate_korsts(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """KorSTS test on both prompt sides: query (``kosearch evaluate sts``'s default) and document (what is stored)."""
    from kosearch.evaluate import evaluate_sts

    sides = {}
    for side in ("query", "document"):
        result = evaluate_sts(model, args.sts_test, side=side, show_progress_bar=False)
        sides[side] = {metric: getattr(result, metric) for metric in (*result.METRICS, "avg")}
    return {"model": model, "korsts": sides}


def train(
    budget: float, folder: Path, args: argparse.Namespace, *, name: str | None = None, model: str | None = None,
    train_args: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``python -m kosearch train adapt`` in a subprocess; ``--resume`` when an earlier attempt left checkpoints.

    ``name``: the output folder in ``folder`` (``adapted-<B>min``); ``model``: the model adapted (the bundled one);
    ``train_args``: the extra arguments (``--train-arg``). Its ``--json`` summary is kept in ``<name>.json`` beside
    the model, so a run that finished training but was killed before recording the step is not trained again."""
    name = name or f"adapted-{budget:g}min"
    output = folder / name
    summary = folder / f"{name}.json"
    if (output / "modules.json").is_file() and summary.is_file():
        saved = json.loads(summary.read_text(encoding="utf-8"))
        return {**saved, "note": "recorded from an earlier attempt's summary"}
    command = [
        sys.executable, "-m", "kosearch", "train", "adapt", "--documents", str(folder / "adapt_docs"),
        "--output", str(output), "--max-minutes", f"{budget:g}", "--seed", str(args.seed), "--json",
        *(["--model", model] if model else []), *(args.train_arg if train_args is None else train_args),
    ]
    if (output / "checkpoints").is_dir() and not (output / "modules.json").is_file():
        command.append("--resume")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = folder / f"{name}.log"
    print("  $", " ".join(command), flush=True)
    started = time.perf_counter()
    with open(log, "a", encoding="utf-8") as stderr:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"train adapt failed (exit {completed.returncode}); see {log}")
    record = {"command": command, "output": str(output), "wall_seconds": wall, "train": json.loads(completed.stdout)}
    summary.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return record


# ----------------------------------------------------------------------------------------------- the report


def markdown(records: dict[str, Any]) -> str:
    lines = [
        "| set | model | dense nDCG@10 | dense MRR@10 | hybrid nDCG@10 | hybrid MRR@10 | KorSTS cos S (query / doc) "
        "| NSMC k-NN | steps | train min | wall min | when (UTC), load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for set_name, models in records["sets"].items():
        base = models["base"]
        for label, row in models.items():
            def metric(mode: str, name: str) -> str:
                value = row["eval"]["retrieval"][mode][name]
                if label == "base":
                    return f"{value:.2f}"
                return f"{value:.2f} ({value - base['eval']['retrieval'][mode][name]:+.2f})"

            score = row["sts"]["korsts"]
            base_score = base["sts"]["korsts"]
            cells = []
            for side in ("query", "document"):
                value = score[side]["cosine_spearman"]
                change = value - base_score[side]["cosine_spearman"]
                cells.append(f"{value:.2f}" + ("" if label == "base" else f" ({change:+.2f})"))
            sts_cell = " / ".join(cells)
            knn = row["eval"].get("knn_accuracy")
            knn_cell = "" if knn is None else f"{knn:.2f}"
            steps = train_min = wall_min = ""
            when = f"{row['eval']['started'][11:16]}, load {row['eval']['load_before'][0]:.1f}"
            if "train" in row:
                trained = row["train"]["train"]
                phases = trained.get("phases") or [{}]
                steps = f"{trained.get('steps', '')} / {phases[0].get('planned_steps', '')}"
                train_min = f"{trained.get('train_seconds', 0) / 60:.1f}"
                wall_min = f"{row['train']['wall_seconds'] / 60:.1f}"
                when = (f"{row['train']['started'][:16].replace('T', ' ')}, load "
                        f"{row['train']['load_before'][0]:.1f}-{row['train']['load_after'][0]:.1f}")
            lines.append(
                f"| {set_name} | {label} | {metric('dense', 'ndcg_at_10')} | {metric('dense', 'mrr_at_10')} | "
                f"{metric('hybrid', 'ndcg_at_10')} | {metric('hybrid', 'mrr_at_10')} | {sts_cell} | {knn_cell} | "
                f"{steps} | {train_min} | {wall_min} | {when} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budgets", type=float, nargs="+", default=[15, 30, 60], help="minutes per train adapt run")
    parser.add_argument("--sets", nargs="+", default=["chatbot", "nsmc"], choices=["chatbot", "nsmc"])
    parser.add_argument("--chatbot-queries", type=int, default=1500)
    parser.add_argument("--nsmc-movies", type=int, default=1000)
    parser.add_argument("--nsmc-adapt", type=int, default=20000, help="reviews in the NSMC adaptation folder")
    parser.add_argument("--sts-test", type=Path, default=DATA / "korsts" / "sts-test.tsv")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--train-arg", action="append", default=[],
                        help="extra argument for train adapt (repeat, e.g. --train-arg=--precision --train-arg=bf16)")
    parser.add_argument("--map-on-top", action="store_true",
                        help="also fit train adapt's linear map on each adapted model (train adapt --model ADAPTED "
                             "--no-word-weights, the same budget) and evaluate it: the map on a fine-tuned encoder")
    parser.add_argument("--map-arg", action="append", default=[],
                        help="extra argument for the --map-on-top run (repeat; --train-arg does not reach it, as "
                             "--fine-tune there would train the encoder again instead of fitting the map)")
    args = parser.parse_args(argv)
    if args.map_on_top and not {"--fine-tune", "--no-linear-map"} & set(args.train_arg):
        parser.error("--map-on-top fits the map on a model that has none: add --train-arg=--fine-tune (or "
                     "--train-arg=--no-linear-map); train adapt's default already adds a map")
    steps = Steps(args.out / "steps")
    records: dict[str, Any] = {"command": " ".join(sys.argv), "budgets": args.budgets, "sets": {}, "built": {}}
    base_sts = steps.run("korsts/base", lambda: evaluate_korsts("bundled", args))
    for set_name in args.sets:
        folder = args.out / set_name
        records["built"][set_name] = steps.run(f"{set_name}/build", lambda: build_set(set_name, folder, args))
        base = steps.run(f"{set_name}/eval/base", lambda: evaluate_model("bundled", set_name, folder, args))
        rows: dict[str, Any] = {"base": {"eval": base, "sts": base_sts}}
        for budget in args.budgets:
            trained = steps.run(f"{set_name}/train/{budget:g}", lambda: train(budget, folder, args))
            model = trained["output"]
            rows[f"adapt {budget:g} min"] = {
                "train": trained,
                "eval": steps.run(f"{set_name}/eval/{budget:g}", lambda: evaluate_model(model, set_name, folder, args)),
                "sts": steps.run(f"{set_name}/korsts/{budget:g}", lambda: evaluate_korsts(model, args)),
            }
            if args.map_on_top:
                mapped = steps.run(f"{set_name}/train/{budget:g}+map", lambda: train(
                    budget, folder, args, name=f"adapted-{budget:g}min-map", model=model,
                    train_args=["--no-word-weights", *args.map_arg]))
                on_top = mapped["output"]
                rows[f"adapt {budget:g} min + map"] = {
                    "train": mapped,
                    "eval": steps.run(f"{set_name}/eval/{budget:g}+map",
                                      lambda: evaluate_model(on_top, set_name, folder, args)),
                    "sts": steps.run(f"{set_name}/korsts/{budget:g}+map", lambda: evaluate_korsts(on_top, args)),
                }
        records["sets"][set_name] = rows
    (args.out / "adapt_runs.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    table = markdown(records)
    (args.out / "adapt_runs.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
