"""Token weights fitted on a domain folder, as a label-free adaptation of pooling (issue 9): measured per variant.

Why try it: the bundled e5 averages its token vectors (mean pooling), so a frequent token of the domain weighs
as much as its rarest term. On the "which movie" set lexical BM25 beats dense search by four nDCG points: the
domain's rare words carry what the queries share with their documents. Weighting each token by how rare it is
in the domain's own text (inverse document frequency, as BM25 does; or Arora et al., 2017's smooth inverse
frequency, SIF) moves the pooled vector towards those words with no training at all, and the result is a
standard sentence-transformers module (``models.WordWeights`` before ``Pooling``), so an adapted model folder
would load anywhere. The question is the same as for whitening (``bench/adapt_whitening.py``): does it help
in-domain retrieval without costing general similarity (KorSTS at most 1 point)?

For a set folder of ``bench/adapt_runs.py`` (``beir/`` and ``adapt_docs/``) and a model this

- counts, with the model's own tokenizer, in how many of the folder's passages each token occurs (the folder
  only: the evaluation's queries and documents are not read for the statistics);
- runs the transformer once over the set's corpus (each document whole, document prompt), its queries (query
  prompt) and KorSTS test (query prompt, ``kosearch evaluate sts``'s default) and keeps every token vector;
- pools them with each weighting and scores dense nDCG@10 (exact cosine, each document one vector, as
  ``adapt_whitening.py``) and KorSTS cosine Spearman x100.

Weightings (``w`` multiplies a token's vector in the mean; the prompt's tokens and the special tokens get the
weight named in the variant: ``min``, the weight of a token in every passage; ``one``, 1):

- ``mean``: every token 1 (the model's own pooling; checked against ``encode``);
- ``idf^p``: ``idf(t) ** p`` with BM25's ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``;
- ``sif-a``: ``a / (a + f(t))``, ``f`` the token's share of all tokens in the folder.

Usage::

    OMP_NUM_THREADS=2 python bench/adapt_word_weights.py --set runs/adapt/chatbot --out runs/ww/chatbot.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adapt_whitening import ndcg_at_10, read_beir, read_korsts, screen_parser, screen_record  # noqa: E402

POWERS = (0.5, 1.0, 1.5, 2.0, 3.0)
SIF_A = (1e-3, 1e-4)
WHITENED = ("mean", "idf^1/one", "idf^2/one")
SHRINKS = (1.0, 10.0, 100.0)


def whitening(fit: np.ndarray, shrink: float) -> Callable[[np.ndarray], np.ndarray]:
    """``(x - mean) U (L + shrink * mean(L))^-1/2``, fitted on ``fit`` (as ``adapt_whitening.py``'s ``whiten-s``)."""
    mean = fit.mean(0)
    values, vectors = np.linalg.eigh(np.cov((fit - mean).T))
    matrix = vectors / np.sqrt(values + shrink * values.mean())

    def transform(x: np.ndarray) -> np.ndarray:
        y = (x - mean) @ matrix
        return y / np.linalg.norm(y, axis=1, keepdims=True)

    return transform


def adaptation_passages(folder: Path) -> list[str]:
    return [block.strip() for path in sorted((folder / "adapt_docs").glob("*.txt"))
            for block in path.read_text(encoding="utf-8").split("\n\n") if block.strip()]


def token_statistics(tokenizer, passages: Sequence[str]) -> tuple[Counter, Counter, int]:
    """Per token id: passages containing it, and occurrences; and the number of passages."""
    documents, occurrences = Counter(), Counter()
    for start in range(0, len(passages), 512):
        for ids in tokenizer(list(passages[start:start + 512]), add_special_tokens=False)["input_ids"]:
            occurrences.update(ids)
            documents.update(set(ids))
    return documents, occurrences, len(passages)


def token_vectors(model, texts: Sequence[str], prompt: str, batch_size: int = 32):
    """(input ids, token vectors) per text, as the model's first module computes them before pooling."""
    import torch

    out: list[tuple[np.ndarray, np.ndarray]] = []
    order = np.argsort([-len(text) for text in texts])
    by_index: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [int(i) for i in order[start:start + batch_size]]
            features = model.tokenize([prompt + texts[i] for i in batch])
            features = {key: value.to(model.device) if hasattr(value, "to") else value for key, value in features.items()}
            tokens = model[0](dict(features))["token_embeddings"].float().cpu().numpy()
            mask = features["attention_mask"].cpu().numpy().astype(bool)
            ids = features["input_ids"].cpu().numpy()
            for row, index in enumerate(batch):
                by_index[index] = (ids[row][mask[row]], tokens[row][mask[row]])
    out = [by_index[i] for i in range(len(texts))]
    return out


def pooled(vectors, weight_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    rows = []
    for ids, tokens in vectors:
        weights = weight_of(ids)
        rows.append((weights[:, None] * tokens).sum(0) / weights.sum())
    matrix = np.vstack(rows).astype(np.float64)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def weightings(documents: Counter, occurrences: Counter, passages: int, fixed_ids: set[int], vocab_size: int):
    """name -> function(ids) -> weights; ``fixed_ids``: the prompt's and special tokens."""
    df = np.zeros(vocab_size)
    for token, count in documents.items():
        df[token] = count
    idf = np.log1p((passages - df + 0.5) / (df + 0.5))
    total = sum(occurrences.values())
    share = np.zeros(vocab_size)
    for token, count in occurrences.items():
        share[token] = count / total
    fixed = np.fromiter(fixed_ids, dtype=np.int64)
    tables: dict[str, np.ndarray] = {"mean": np.ones(vocab_size)}
    for power in POWERS:
        for name, fixed_weight in (("min", float(idf.min()) ** power), ("one", 1.0)):
            table = idf ** power
            table[fixed] = fixed_weight
            tables[f"idf^{power:g}/{name}"] = table
    for a in SIF_A:
        table = a / (a + share)
        table[fixed] = a / (a + share.max())
        tables[f"sif-{a:g}/min"] = table
    return {name: (lambda ids, t=table: t[ids]) for name, table in tables.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = screen_parser(__doc__.split("\n")[0])
    parser.add_argument("--fit-passages", type=int, default=4000, help="folder passages the whitening is fitted on")
    args = parser.parse_args(argv)
    from scipy.stats import spearmanr

    from kosearch.encoders.encoder import Encoder

    started = time.perf_counter()
    record = screen_record("adapt_word_weights.py", argv)
    encoder = Encoder(args.model)
    model = encoder.model
    tokenizer = model.tokenizer
    prompts = encoder.prompts
    query_prompt, document_prompt = prompts.get("query", ""), prompts.get("document", "")
    passages = adaptation_passages(args.set)
    documents, occurrences, count = token_statistics(tokenizer, passages)
    fixed_ids = set(tokenizer.all_special_ids)
    for prompt in (query_prompt, document_prompt):
        fixed_ids.update(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    corpus, queries, qrels = read_beir(args.set)
    first, second, gold = read_korsts(args.sts_test)
    corpus_v = token_vectors(model, [(c.get("title", "") + " " + c["text"]).strip() for c in corpus], document_prompt)
    queries_v = token_vectors(model, [q["text"] for q in queries], query_prompt)
    first_v = token_vectors(model, first, query_prompt)
    second_v = token_vectors(model, second, query_prompt)
    fit_lines = passages[:: max(1, len(passages) // args.fit_passages)][: args.fit_passages]
    fit_v = token_vectors(model, fit_lines, document_prompt) + token_vectors(model, fit_lines, query_prompt)
    record["encode_seconds"] = round(time.perf_counter() - started, 1)
    check = encoder.encode_documents([(c.get("title", "") + " " + c["text"]).strip() for c in corpus[:16]])
    mean_check = pooled(corpus_v[:16], lambda ids: np.ones(len(ids)))
    record["mean_pooling_matches_encode"] = float(np.min((np.asarray(check, dtype=np.float64) * mean_check).sum(1)))
    document_ids, query_ids = [c["_id"] for c in corpus], [q["_id"] for q in queries]
    results = {}
    for name, weight_of in weightings(documents, occurrences, count, fixed_ids, len(tokenizer)).items():
        korsts = 100 * spearmanr((pooled(first_v, weight_of) * pooled(second_v, weight_of)).sum(1), gold).correlation
        ndcg = ndcg_at_10(pooled(queries_v, weight_of), pooled(corpus_v, weight_of), query_ids, document_ids, qrels)
        results[name] = {"dense_ndcg_at_10": ndcg, "korsts": float(korsts)}
        base = results["mean"]
        if name in WHITENED:
            fit = pooled(fit_v, weight_of)
            for shrink in SHRINKS:
                transform = whitening(fit, shrink)
                k = 100 * spearmanr((transform(pooled(first_v, weight_of)) * transform(pooled(second_v, weight_of))).sum(1),
                                    gold).correlation
                n = ndcg_at_10(transform(pooled(queries_v, weight_of)), transform(pooled(corpus_v, weight_of)),
                               query_ids, document_ids, qrels)
                results[f"{name}+whiten-{shrink:g}"] = {"dense_ndcg_at_10": n, "korsts": float(k)}
                print(f"{name + '+whiten-' + format(shrink, 'g'):16s} dense nDCG@10 {n:6.2f} "
                      f"({n - base['dense_ndcg_at_10']:+.2f})  KorSTS {k:6.2f} ({k - base['korsts']:+.2f})", flush=True)
        print(f"{name:16s} dense nDCG@10 {ndcg:6.2f} ({ndcg - base['dense_ndcg_at_10']:+.2f})  "
              f"KorSTS {korsts:6.2f} ({korsts - base['korsts']:+.2f})", flush=True)
    record.update(model=args.model or "bundled", set=args.set.name, queries=len(qrels), documents=len(corpus),
                  passages=count, results=results, load_at_end=os.getloadavg(),
                  seconds=round(time.perf_counter() - started, 1))
    print("mean pooling vs encode, lowest cosine:", record["mean_pooling_matches_encode"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
