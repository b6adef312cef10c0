"""A linear map after pooling, trained on the folder's mined queries: does it add to the domain token weights?

Why try it: whitening the domain's vectors (``bench/adapt_whitening.py``) is a linear map after pooling, and it
raised in-domain retrieval more than anything trained here (NSMC +2.5, chatbot +1.5 dense nDCG@10), but it is
fitted to the domain's spread alone and cost general similarity (KorSTS -1 to -6). A linear map *trained* on the
retrieval examples :mod:`kosearch.train.mining` makes from the folder (BM25 as the teacher, no labels), pulled
towards an anchor (the identity; or, as ``train adapt`` ships it, a whitening of the examples' vectors without
subtracting their mean), changes only what the examples ask for. It trains on cached vectors (the transformer is not
trained, only run once over the examples), so it costs seconds, not the hour that fine-tuning the encoder takes,
and it is sentence-transformers' own ``Dense`` module, so a model folder with it loads anywhere.

For a set folder of ``bench/adapt_runs.py`` (``beir/`` and ``adapt_docs/``) and a model this

- adds the domain token weights of ``kosearch train adapt`` (counted on ``adapt_docs`` only) and mines examples
  from ``adapt_docs`` as ``train adapt --fine-tune`` does;
- encodes the examples, the set's corpus and queries, and KorSTS test (query prompt, as ``kosearch evaluate sts``);
- scores dense nDCG@10 (exact cosine, one vector per document) and KorSTS for the weights alone, the weights with
  whitening (shrinkage 10), and the weights with each map :func:`kosearch.train.linear_map.train_linear_map`
  trains (the loss is the in-batch and hard-negative cross entropy of ``MultipleNegativesRankingLoss``, scale 20,
  plus ``l2 * ||W - anchor||^2``; ``W`` starts at the anchor):

  - anchored at the identity (session 10's map) and at the shipped anchor, the examples' uncentred shrunk whitening
    (:func:`kosearch.train.linear_map.shrunk_whitening`, shrinkage 10, as ``train adapt`` fits it), for each ``l2``
    and number of passes;
  - anchored at the uncentred whitening of each other shrinkage, at the shipped ``l2`` and passes, and each anchor
    alone (no training); and the centred whitening (shrinkage 10) fitted on the anchor's own vectors.

Usage::

    OMP_NUM_THREADS=2 python bench/adapt_linear.py --set runs/adapt/chatbot --out runs/linear/chatbot.json
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from adapt_whitening import _unit, ndcg_at_10, read_beir, read_korsts, screen_parser, screen_record  # noqa: E402
from adapt_word_weights import whitening  # noqa: E402

L2 = (0.0, 0.3, 1.0, 3.0, 10.0)
EPOCHS = (1, 4, 8)
SHRINKAGES = (1.0, 3.0, 10.0, 30.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = screen_parser(__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=8000, help="mined examples the map trains on (at most)")
    parser.add_argument("--seed", type=int, default=13, help="seed of the mining, the sample and the map's batches")
    args = parser.parse_args(argv)
    from scipy.stats import spearmanr

    from kosearch.encoders.encoder import Encoder
    from kosearch.train.adapt import read_passages
    from kosearch.train.linear_map import MAP_ANCHOR_SHRINKAGE, MAP_EPOCHS, MAP_L2, encode_examples, \
        shrunk_whitening, train_linear_map
    from kosearch.train.mining import mine_examples
    from kosearch.train.word_weights import add_word_weights

    started = time.perf_counter()
    record = screen_record("adapt_linear.py", argv)
    encoder = Encoder(args.model)
    model = encoder.model
    query_prompt, document_prompt = encoder.prompts.get("query", ""), encoder.prompts.get("document", "")
    passages, _ = read_passages(args.set / "adapt_docs")
    add_word_weights(model, (passage.text for passage in passages))
    examples, report = mine_examples(passages, seed=args.seed)
    random.Random(args.seed).shuffle(examples)
    examples = examples[: args.examples]
    record["mining"] = report.summary()
    print(f"{len(passages)} passages, {len(examples)} examples ({report.summary()})", flush=True)

    def encode(texts: Sequence[str], prompt: str) -> np.ndarray:
        return np.asarray(model.encode([prompt + text for text in texts], batch_size=64, convert_to_numpy=True,
                                       normalize_embeddings=True), dtype=np.float64)

    corpus, queries, qrels = read_beir(args.set)
    first, second, gold = read_korsts(args.sts_test)
    corpus_v = encode([(c.get("title", "") + " " + c["text"]).strip() for c in corpus], document_prompt)
    queries_v = encode([q["text"] for q in queries], query_prompt)
    first_v, second_v = encode(first, query_prompt), encode(second, query_prompt)
    mined = encode_examples(model, examples)
    record["encode_seconds"] = round(time.perf_counter() - started, 1)
    print(f"encoded in {record['encode_seconds']} s", flush=True)
    document_ids, query_ids = [c["_id"] for c in corpus], [q["_id"] for q in queries]

    def score(transform) -> dict[str, float]:
        korsts = 100 * spearmanr((transform(first_v) * transform(second_v)).sum(1), gold).correlation
        ndcg = ndcg_at_10(transform(queries_v), transform(corpus_v), query_ids, document_ids, qrels)
        return {"dense_ndcg_at_10": ndcg, "korsts": float(korsts)}

    results = {"weights": score(_unit)}
    fit = np.vstack([mined.positives[:4000], mined.queries[:4000]]).astype(np.float64)
    results["weights+whiten-10"] = score(whitening(fit, 10.0))
    fitted = np.vstack([mined.queries, mined.distinct_passages()])
    # The centred whitening on the anchor's own fit, so the two differ only by the mean.
    results["weights+whiten-10-anchor-fit"] = score(whitening(fitted.astype(np.float64), 10.0))
    anchors = {shrinkage: shrunk_whitening(fitted, shrinkage) for shrinkage in SHRINKAGES}

    def add_map(name: str, anchor: np.ndarray | None, l2: float, epochs: int) -> None:
        tick = time.perf_counter()
        matrix = train_linear_map(mined.queries, mined.positives, mined.negatives, positive_ids=mined.positive_ids,
                                  negative_ids=mined.negative_ids, anchor=anchor, l2=l2, epochs=epochs, seed=args.seed)
        origin = np.eye(len(matrix)) if anchor is None else anchor
        results[name] = {**score(lambda x, m=matrix: _unit(x @ m)),
                         "train_seconds": round(time.perf_counter() - tick, 1),
                         "distance_from_identity": float(np.linalg.norm(matrix - np.eye(len(matrix)))),
                         "distance_from_anchor": float(np.linalg.norm(matrix - origin))}

    for shrinkage, anchor in anchors.items():
        results[f"weights+anchor{shrinkage:g}"] = score(lambda x, m=anchor: _unit(x @ m))
    for l2 in L2:
        for epochs in EPOCHS:
            add_map(f"weights+map-l2={l2:g}-e{epochs}", None, l2, epochs)
            add_map(f"weights+map-anchor{MAP_ANCHOR_SHRINKAGE:g}-l2={l2:g}-e{epochs}", anchors[MAP_ANCHOR_SHRINKAGE],
                    l2, epochs)
    for shrinkage, anchor in anchors.items():
        if shrinkage != MAP_ANCHOR_SHRINKAGE:
            add_map(f"weights+map-anchor{shrinkage:g}-l2={MAP_L2:g}-e{MAP_EPOCHS}", anchor, MAP_L2, MAP_EPOCHS)
    base = results["weights"]
    for name, result in results.items():
        print(f"{name:36s} dense nDCG@10 {result['dense_ndcg_at_10']:6.2f} "
              f"({result['dense_ndcg_at_10'] - base['dense_ndcg_at_10']:+.2f})  KorSTS {result['korsts']:6.2f} "
              f"({result['korsts'] - base['korsts']:+.2f})", flush=True)
    record.update(model=args.model or "bundled", set=args.set.name, queries=len(qrels), documents=len(corpus),
                  passages=len(passages), examples=len(examples), results=results, load_at_end=os.getloadavg(),
                  seconds=round(time.perf_counter() - started, 1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
