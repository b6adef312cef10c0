"""Is hybrid's loss on two sets noise, why does it lose, and does a per-query confidence fix it?

``bench/fusion_study.py`` compared fixed fusions (normalisations, depths, completion, RRF, one
adaptive weight from idf coverage) and the product took z-scores over the union of candidates,
w = 0.3, 100 candidates per signal, BM25 looked up for dense candidates; ``bench/bm25_grid.py`` then
set BM25 to k1 = 0.9, b = 0.3. With those defaults hybrid lost on two of six sets (the sample
questions at sentence units to dense, chatbot to BM25); the product now floors the dense std at
0.01 (``fusion.DEFAULT_DENSE_STD_FLOOR``), which this study chose; its "plain z" rows are the default
before that. This script, on the same cached scores
(``fusion_study.load_sets``; BM25 here at the product's k1 / b, Robertson idf), does three things:

1. **Noise**: paired bootstrap over queries (``--resamples``, 95% percentile intervals) of hybrid
   minus dense and hybrid minus lexical, MRR@10 and nDCG@10, per set, for the earlier default (plain
   z-scores) and the product's fusion now, and of the one minus the other.
2. **The losing queries**: for each set, the queries where hybrid puts the first relevant document
   lower than the better single signal does, and per-query features of the two candidate lists
   (how many candidates hold a query term, BM25 ties at the top, each signal's top-1 gap and spread,
   overlap of the two top-10 lists), losing against winning queries.
3. **New fusions**, each a change to the default with parameters chosen leave-one-set-out (best mean
   MRR@10 over five sets, scored on the sixth; the grid of each family is small):

   - ``gap``: the lexical weight per query moves on the log-odds scale by how much more confident
     the lexical list is than the dense one, ``logit(w_q) = logit(w) + beta * (c_lex - c_dense)``,
     where a list's confidence is its top-1 gap relative to its top-10 span,
     ``(s1 - s2) / (s1 - s10)`` (1: one dominant hit; 0: a flat top);
   - ``spread``: the dense z-scores scaled by the dense list's own spread relative to a fixed
     reference, ``z_dense * (min(std_q, sigma0) / sigma0) ** alpha``: when e5's cosines of the
     candidates lie within a hair of each other, dense cannot tell them apart and should move the mix
     less; alpha 1 is a floor on the std the dense z-score divides by, ``(s - mean) / max(std, sigma0)``,
     the product's ``fusion.DEFAULT_DENSE_STD_FLOOR`` at sigma0 0.01 (checked query by query through
     ``kosearch.search.fusion.convex_fusion`` on every set);
   - ``agree``: a CombMNZ-style bonus ``gamma`` (in z units) for a candidate in both signals' top 10;
   - ``clip``: the lexical z-score capped at ``cap``: with few candidates holding a query term among
     the ~150 of the union, a plain match gets z of 5-10 and outvotes any dense difference.

Usage: OMP_NUM_THREADS=1 PYTHONPATH=. python bench/fusion_confidence.py --sets /tmp/devsets-fusion --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fusion_study import DEPTH, DISCOUNT, SETS, Prepared, Variant, check_metrics, lexical, load_sets, prepare  # noqa: E402
from fusion_study import evaluate as study_evaluate  # noqa: E402

from kosearch.search.bm25 import DEFAULT_B, DEFAULT_K1, BM25Parameters  # noqa: E402
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR, DEFAULT_LEXICAL_WEIGHT, convex_fusion  # noqa: E402
from kosearch.search.hybrid import FUSION_CANDIDATES  # noqa: E402
from kosearch.search.morphemes import LexicalOptions  # noqa: E402

PRODUCT = Variant("zscore", DEFAULT_LEXICAL_WEIGHT, FUSION_CANDIDATES, "lexical", over_union=True)
"""The default before this study (plain dense z-scores) as fusion_study spells it; ``Fusion("default")``
must give the same numbers (asserted)."""


# ------------------------------------------------------------------------------ the default's parts
@dataclass
class Parts:
    """The default fusion's ingredients per query over the prepared union (queries, U)."""

    union: np.ndarray
    dense_mask: np.ndarray
    lex_mask: np.ndarray
    dense_raw: np.ndarray
    """Dense cosine, the dense list's floor for a lexical-only candidate (what the product uses)."""
    lex_raw: np.ndarray
    """BM25 (completed: real for every candidate)."""
    zd: np.ndarray
    zl: np.ndarray
    dense_std: np.ndarray
    """(queries,) population std of the dense scores over the union."""
    extra: dict = field(default_factory=dict)


def _zscore(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    safe = np.where(mask, values, 0.0)
    mean = safe.sum(axis=1, keepdims=True) / count
    std = np.sqrt(np.where(mask, (safe - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    z = np.where(std > 0, (safe - mean) / np.where(std > 0, std, 1.0), 0.0)
    return np.where(mask, z, 0.0), std[:, 0]


def parts(p: Prepared, depth: int = FUSION_CANDIDATES) -> Parts:
    dense_mask = p.dense_rank < depth
    lex_mask = p.lex_rank < depth
    union = dense_mask | lex_mask
    dense = np.where(np.isfinite(p.dense), p.dense, 0.0)
    floor = np.where(dense_mask, dense, np.inf).min(axis=1, keepdims=True)
    dense_raw = np.where(dense_mask, dense, floor)
    lex_raw = np.where(union, p.lex, 0.0)
    zd, dense_std = _zscore(dense_raw, union)
    zl, _ = _zscore(lex_raw, union)
    return Parts(union, dense_mask, lex_mask, dense_raw, lex_raw, zd, zl, dense_std)


def _top(values: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """(queries, n) the n best values among the masked ones, descending, -inf padded."""
    masked = np.where(mask, values, -np.inf)
    n = min(n, masked.shape[1])
    return -np.sort(-masked, axis=1)[:, :n]


def top_gap(values: np.ndarray, mask: np.ndarray, k: int = 10) -> np.ndarray:
    """(s1 - s2) / (s1 - sk) over a list's own top: 1 = one dominant hit, 0 = flat (or < 2 hits)."""
    top = _top(values, mask, k)
    s1 = top[:, 0]
    s2 = top[:, 1] if top.shape[1] > 1 else np.full_like(s1, -np.inf)
    finite = np.isfinite(top)
    last = np.array([row[f][-1] if f.any() else -np.inf for row, f in zip(top, finite)])
    span = s1 - last
    ok = np.isfinite(s2) & (span > 0)
    return np.where(ok, (s1 - np.where(np.isfinite(s2), s2, 0.0)) / np.where(ok, span, 1.0), 0.0)


def top_sets(values: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """(queries, U) bool: in the list's top k (by value, ties by column)."""
    order = np.argsort(-np.where(mask, values, -np.inf), axis=1, kind="stable")[:, :k]
    out = np.zeros_like(mask)
    np.put_along_axis(out, order, True, axis=1)
    return out & mask


# ------------------------------------------------------------------------------------- the fusions
@dataclass(frozen=True)
class Fusion:
    family: str  # dense | lexical | default | gap | spread | agree | clip
    weight: float = DEFAULT_LEXICAL_WEIGHT
    param: float = 0.0
    param2: float = 0.0

    @property
    def label(self) -> str:
        if self.family in ("dense", "lexical", "default"):
            return self.family if self.family != "default" else f"plain z (earlier default) w={self.weight:g}"
        names = {"gap": ("beta", "k"), "spread": ("alpha", "sigma0"), "agree": ("gamma", ""), "clip": ("cap", "")}[self.family]
        text = f"{self.family} w={self.weight:g} {names[0]}={self.param:g}"
        return text + (f" {names[1]}={self.param2:g}" if names[1] else "")


def fused_scores(p: Prepared, q: Parts, f: Fusion) -> np.ndarray:
    if f.family == "dense":
        return np.where(q.dense_mask, p.dense, -np.inf)
    if f.family == "lexical":
        return np.where(q.lex_mask, p.lex, -np.inf)
    zd, zl = q.zd, q.zl
    weight = np.full((zd.shape[0], 1), f.weight)
    bonus = 0.0
    if f.family == "gap":
        k = int(f.param2)
        if ("c_lex", k) not in q.extra:
            q.extra[("c_lex", k)] = top_gap(q.lex_raw, q.lex_mask, k)
            q.extra[("c_dense", k)] = top_gap(q.dense_raw, q.dense_mask, k)
        c_lex, c_dense = q.extra[("c_lex", k)], q.extra[("c_dense", k)]
        logit = np.log(f.weight / (1 - f.weight)) + f.param * (c_lex - c_dense)
        weight = (1 / (1 + np.exp(-logit)))[:, None]
    elif f.family == "spread":  # only damps: a list spread wider than sigma0 keeps its plain z-scores
        zd = zd * ((np.minimum(q.dense_std, f.param2) / f.param2) ** f.param)[:, None]
    elif f.family == "agree":
        both = q.extra.setdefault("both10", top_sets(q.dense_raw, q.dense_mask, 10) & top_sets(q.lex_raw, q.lex_mask, 10))
        bonus = f.param * both
    elif f.family == "clip":
        zl = np.minimum(zl, f.param)
    fused = (1 - weight) * zd + weight * zl + bonus
    return np.where(q.union, fused, -np.inf)


def per_query(p: Prepared, fused: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query MRR@10, nDCG@10 (x100) and the rank of the first relevant document (0: not in top 10).

    Ties as fusion_study.evaluate breaks them: fused score, then the dense score, then document order.
    """
    order = np.lexsort((p.doc, -np.where(np.isfinite(p.dense), p.dense, -1e9), -fused), axis=1)[:, :DEPTH]
    top_scores = np.take_along_axis(fused, order, axis=1)
    gains = (np.take_along_axis(p.relevant, order, axis=1) & np.isfinite(top_scores)).astype(np.float64)
    if gains.shape[1] < DEPTH:
        gains = np.pad(gains, ((0, 0), (0, DEPTH - gains.shape[1])))
    first = np.where(gains.any(axis=1), gains.argmax(axis=1) + 1, 0)
    ideal = np.array([DISCOUNT[: min(n, DEPTH)].sum() for n in p.n_relevant])
    return {
        "mrr_at_10": 100 * np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0),
        "ndcg_at_10": 100 * (gains * DISCOUNT).sum(axis=1) / ideal,
        "first": first,
    }


METRICS = ("mrr_at_10", "ndcg_at_10")
PRODUCT_NEW = Fusion("spread", DEFAULT_LEXICAL_WEIGHT, 1.0, DEFAULT_DENSE_STD_FLOOR or 0.0)
"""The product's fusion now (``convex_fusion`` defaults), as this study spells it."""


def through_product(p: Prepared, depth: int = FUSION_CANDIDATES) -> dict[str, np.ndarray]:
    """Per-query metrics of ``kosearch.search.fusion.convex_fusion`` at its defaults, query by query.

    Candidate lists as ``kosearch.search.hybrid`` builds them: each signal's top ``depth``, and the BM25
    of the dense candidates the lexical list missed (those holding a query term).
    """
    fused = np.full(p.doc.shape, -np.inf)
    for q in range(p.doc.shape[0]):
        valid = p.doc[q] >= 0
        dense = {c: float(p.dense[q, c]) for c in np.flatnonzero(valid & (p.dense_rank[q] < depth))}
        lexical = {c: float(p.lex[q, c]) for c in np.flatnonzero(valid & (p.lex_rank[q] < depth))}
        scored = {c: float(p.lex[q, c]) for c in dense if c not in lexical and p.lex[q, c] > 0}
        for hit in convex_fusion(dense, lexical, lexical_scored=scored):
            fused[q, hit.key] = hit.score
    return per_query(p, fused)


def bootstrap(a: np.ndarray, b: np.ndarray, resamples: int, rng: np.random.Generator) -> dict[str, float]:
    """Mean of a - b and its paired-bootstrap 95% percentile interval (queries resampled)."""
    diff = a - b
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high),
            "p_le_0": float((means <= 0).mean()), "p_ge_0": float((means >= 0).mean())}


# ------------------------------------------------------------------------------------ loss analysis
def features(p: Prepared, q: Parts) -> dict[str, np.ndarray]:
    lex_count = q.lex_mask.sum(axis=1)
    top_lex = _top(q.lex_raw, q.lex_mask, 10)
    ties_at_top = np.array([int(np.sum(np.isclose(row[np.isfinite(row)], row[0]))) if np.isfinite(row[0]) else 0 for row in top_lex])
    both = top_sets(q.dense_raw, q.dense_mask, 10) & top_sets(q.lex_raw, q.lex_mask, 10)
    return {
        "lexical candidates (BM25 > 0)": lex_count.astype(float),
        "BM25 ties with the lexical top-1": ties_at_top.astype(float),
        "lexical top-1 z over union": np.where(q.union, q.zl, -np.inf).max(axis=1),
        "dense top-1 z over union": np.where(q.union, q.zd, -np.inf).max(axis=1),
        "lexical top gap (s1-s2)/(s1-s10)": top_gap(q.lex_raw, q.lex_mask),
        "dense top gap (s1-s2)/(s1-s10)": top_gap(q.dense_raw, q.dense_mask),
        "dense std over union (cosine)": q.dense_std,
        "top-10 overlap of the two lists": both.sum(axis=1).astype(float),
    }


def loss_analysis(p: Prepared, q: Parts, queries: list[str], default: dict, dense: dict, lex: dict, show: int) -> dict:
    def rank(r: np.ndarray) -> np.ndarray:
        return np.where(r > 0, r, 11)

    best_single = np.minimum(rank(dense["first"]), rank(lex["first"]))
    hyb = rank(default["first"])
    worse, better = hyb > best_single, hyb < best_single
    worse_dense, worse_lex = hyb > rank(dense["first"]), hyb > rank(lex["first"])
    feats = features(p, q)
    summary = {
        "queries": int(len(hyb)),
        "hybrid worse than the better single": int(worse.sum()),
        "hybrid better than the better single": int(better.sum()),
        "hybrid worse than dense": int(worse_dense.sum()),
        "hybrid better than dense": int((hyb < rank(dense["first"])).sum()),
        "hybrid worse than lexical": int(worse_lex.sum()),
        "hybrid better than lexical": int((hyb < rank(lex["first"])).sum()),
        "features (median: losing / winning / all)": {
            name: [float(np.median(v[worse])) if worse.any() else None, float(np.median(v[better])) if better.any() else None, float(np.median(v))]
            for name, v in feats.items()
        },
    }
    examples = []
    for i in np.flatnonzero(worse)[:show]:
        examples.append({
            "query": queries[i], "rank dense / lexical / hybrid": [int(rank(dense["first"])[i]), int(rank(lex["first"])[i]), int(hyb[i])],
            **{name: round(float(v[i]), 3) for name, v in feats.items()},
        })
    summary["examples"] = examples
    return summary


# ------------------------------------------------------------------------------------------- grids
def grid() -> list[Fusion]:
    out = [Fusion("dense"), Fusion("lexical")]
    weights = (0.2, 0.3, 0.4, 0.5)
    out += [Fusion("default", w) for w in weights]
    out += [Fusion("gap", w, beta, k) for w in weights for beta in (-1.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0) for k in (5, 10)]
    out += [Fusion("spread", w, alpha, sigma0) for w in weights for alpha in (0.25, 0.5, 0.75, 1.0)
            for sigma0 in (0.005, 0.01, 0.015, 0.02, 0.03, 0.04)]
    out += [Fusion("agree", w, gamma) for w in weights for gamma in (0.25, 0.5, 1.0)]
    out += [Fusion("clip", w, cap) for w in weights for cap in (2.0, 3.0, 4.0)]
    return out


def leave_one_out(table: dict[str, dict[str, dict[str, float]]], names: list[str], families: list[str], fams: dict[str, str]) -> dict:
    """Per family: for each held-out set, the label with the best mean MRR@10 over the other five."""
    out = {}
    for family in families:
        labels = [label for label in table if fams[label] == family]
        rows = []
        for held in names:
            others = [n for n in names if n != held]
            best = max(labels, key=lambda label: (np.mean([table[label][n]["mrr_at_10"] for n in others]),
                                                  np.mean([table[label][n]["ndcg_at_10"] for n in others])))
            rows.append({"held_out": held, "chosen": best, **{m: table[best][held][m] for m in METRICS}})
        out[family] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=Path, default=ROOT / "bench" / "devsets")
    parser.add_argument("--only", nargs="*", default=list(SETS))
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"start {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC, load average {os.getloadavg()}", flush=True)
    devs = load_sets(args.sets, args.only)
    names = [d.name for d in devs]
    parameters = BM25Parameters(k1=DEFAULT_K1, b=DEFAULT_B, idf="robertson")  # the product's BM25
    prepared, partss = [], []
    for dev in devs:
        p = prepare(dev, lexical(dev, LexicalOptions(), parameters))
        check_metrics(dev, p)
        prepared.append(p)
        partss.append(parts(p))
    rng = np.random.default_rng(20261206)

    fusions = grid()
    fams = {f.label: f.family for f in fusions}
    scores = {f.label: {p.name: per_query(p, fused_scores(p, q, f)) for p, q in zip(prepared, partss)} for f in fusions}
    table = {label: {n: {m: float(v[n][m].mean()) for m in METRICS} for n in names} for label, v in scores.items()}
    default_label = Fusion("default").label
    # The default here must be fusion_study's PRODUCT variant (which was checked against the product's fusion).
    product_new = {}
    for p in prepared:
        product_new[p.name] = {m: float(v.mean()) for m, v in through_product(p).items() if m in METRICS}
        here = table[PRODUCT_NEW.label][p.name]
        print(f"{p.name}: {PRODUCT_NEW.label} here {here['mrr_at_10']:.2f} / {here['ndcg_at_10']:.2f}, through "
              f"kosearch.search.fusion.convex_fusion {product_new[p.name]['mrr_at_10']:.2f} / {product_new[p.name]['ndcg_at_10']:.2f}", flush=True)
        for m in METRICS:
            assert abs(product_new[p.name][m] - here[m]) < 1e-9, (p.name, m)
    for p in prepared:
        theirs = study_evaluate(p, PRODUCT)
        for m in METRICS:
            assert abs(theirs[m] - table[default_label][p.name][m]) < 1e-9, (p.name, m, theirs[m], table[default_label][p.name][m])

    noise = {}
    for title, hybrid_label in (("the earlier default (plain dense z-scores)", default_label), ("the product's fusion now", PRODUCT_NEW.label)):
        print(f"\n## 1. Paired bootstrap of {title}: hybrid minus each single mode, 95% intervals")
        print("| set | queries | metric | dense | lexical | hybrid | hybrid - dense [95% CI] | hybrid - lexical [95% CI] |")
        print("|---|---:|---|---:|---:|---:|---|---|")
        for p in prepared:
            for m in METRICS:
                h, d, lx = (scores[label][p.name][m] for label in (hybrid_label, "dense", "lexical"))
                vs_d, vs_l = bootstrap(h, d, args.resamples, rng), bootstrap(h, lx, args.resamples, rng)
                noise.setdefault(hybrid_label, {}).setdefault(p.name, {})[m] = {"vs_dense": vs_d, "vs_lexical": vs_l}
                print(f"| {p.name} | {len(h)} | {m} | {d.mean():.2f} | {lx.mean():.2f} | {h.mean():.2f} | "
                      f"{vs_d['diff']:+.2f} [{vs_d['low']:+.2f}, {vs_d['high']:+.2f}] | {vs_l['diff']:+.2f} [{vs_l['low']:+.2f}, {vs_l['high']:+.2f}] |")
    print("\n## 1b. The product's fusion now minus the earlier default, 95% intervals")
    print("| set | metric | earlier | now | now - earlier [95% CI] |\n|---|---|---:|---:|---|")
    for p in prepared:
        for m in METRICS:
            new, old = scores[PRODUCT_NEW.label][p.name][m], scores[default_label][p.name][m]
            vs = bootstrap(new, old, args.resamples, rng)
            noise[PRODUCT_NEW.label][p.name][m]["vs_earlier_default"] = vs
            print(f"| {p.name} | {m} | {old.mean():.2f} | {new.mean():.2f} | {vs['diff']:+.2f} [{vs['low']:+.2f}, {vs['high']:+.2f}] |")

    print("\n## 2. Queries where the default ranks the first relevant document lower than the better single mode")
    losses = {}
    for dev, p, q in zip(devs, prepared, partss):
        s = {label: scores[label][p.name] for label in (default_label, "dense", "lexical")}
        losses[p.name] = loss_analysis(p, q, dev.queries, s[default_label], s["dense"], s["lexical"], args.examples)
        a = losses[p.name]
        print(f"\n### {p.name}: {a['queries']} queries; hybrid worse than the better single on {a['hybrid worse than the better single']}, "
              f"better on {a['hybrid better than the better single']}; vs dense {a['hybrid worse than dense']} worse / "
              f"{a['hybrid better than dense']} better; vs lexical {a['hybrid worse than lexical']} worse / {a['hybrid better than lexical']} better")
        print("| feature (median) | losing | winning | all |\n|---|---:|---:|---:|")
        for name, (lo, wi, al) in a["features (median: losing / winning / all)"].items():
            fmt = lambda x: "-" if x is None else f"{x:.3g}"  # noqa: E731
            print(f"| {name} | {fmt(lo)} | {fmt(wi)} | {fmt(al)} |")
        for ex in a["examples"]:
            print("  ", json.dumps(ex, ensure_ascii=False))

    print("\n## 3. Variants: MRR@10 / nDCG@10 per set, mean, sets beating both single modes on both metrics")
    def beats(label: str, n: str) -> bool:
        return all(table[label][n][m] > max(table["dense"][n][m], table["lexical"][n][m]) for m in METRICS)

    summary = {}
    for label in table:
        summary[label] = {"mean_mrr": float(np.mean([table[label][n]["mrr_at_10"] for n in names])),
                          "mean_ndcg": float(np.mean([table[label][n]["ndcg_at_10"] for n in names])),
                          "beats_both": int(sum(beats(label, n) for n in names))}
    print("| variant | " + " | ".join(names) + " | mean MRR@10 | mean nDCG@10 | beats both |")
    print("|---|" + "---|" * (len(names) + 3))
    for label in sorted(table, key=lambda lb: (fams[lb] not in ("dense", "lexical", "default"), -summary[lb]["mean_mrr"])):
        cells = [f"{table[label][n]['mrr_at_10']:.2f} / {table[label][n]['ndcg_at_10']:.2f}" for n in names]
        s = summary[label]
        print(f"| {label} | " + " | ".join(cells) + f" | {s['mean_mrr']:.2f} | {s['mean_ndcg']:.2f} | {s['beats_both']} |")

    families = ["default", "gap", "spread", "agree", "clip"]
    loso = leave_one_out(table, names, families, fams)
    print("\n## 4. Leave one set out (parameters of each family chosen by mean MRR@10 over the other five), held-out MRR@10 / nDCG@10")
    print("| family | " + " | ".join(names) + " | mean | beats both (held out) |")
    print("|---|" + "---|" * (len(names) + 2))
    print("| dense | " + " | ".join(f"{table['dense'][n]['mrr_at_10']:.2f} / {table['dense'][n]['ndcg_at_10']:.2f}" for n in names)
          + f" | {summary['dense']['mean_mrr']:.2f} / {summary['dense']['mean_ndcg']:.2f} | |")
    print("| lexical | " + " | ".join(f"{table['lexical'][n]['mrr_at_10']:.2f} / {table['lexical'][n]['ndcg_at_10']:.2f}" for n in names)
          + f" | {summary['lexical']['mean_mrr']:.2f} / {summary['lexical']['mean_ndcg']:.2f} | |")
    held_bootstrap = {}
    for family in families:
        rows = loso[family]
        wins = 0
        for row in rows:
            n = row["held_out"]
            wins += all(row[m] > max(table["dense"][n][m], table["lexical"][n][m]) for m in METRICS)
            per = scores[row["chosen"]][n]
            held_bootstrap.setdefault(family, {})[n] = {
                m: {"vs_dense": bootstrap(per[m], scores["dense"][n][m], args.resamples, rng),
                    "vs_lexical": bootstrap(per[m], scores["lexical"][n][m], args.resamples, rng),
                    "vs_default": bootstrap(per[m], scores[default_label][n][m], args.resamples, rng)} for m in METRICS}
        cells = [f"{row['mrr_at_10']:.2f} / {row['ndcg_at_10']:.2f}" for row in rows]
        print(f"| {family} (LOSO) | " + " | ".join(cells) + f" | {np.mean([r['mrr_at_10'] for r in rows]):.2f} / "
              f"{np.mean([r['ndcg_at_10'] for r in rows]):.2f} | {wins} |")
    for family in families:
        print(f"  {family}: chosen per held-out set: " + "; ".join(f"{r['held_out']}: {r['chosen']}" for r in loso[family]))
    print("\nHeld-out differences with 95% paired-bootstrap intervals (MRR@10):")
    for family in families:
        for n in names:
            b = held_bootstrap[family][n]["mrr_at_10"]
            print(f"  {family:8} {n:17} vs dense {b['vs_dense']['diff']:+.2f} [{b['vs_dense']['low']:+.2f}, {b['vs_dense']['high']:+.2f}]"
                  f"  vs lexical {b['vs_lexical']['diff']:+.2f} [{b['vs_lexical']['low']:+.2f}, {b['vs_lexical']['high']:+.2f}]"
                  f"  vs default {b['vs_default']['diff']:+.2f} [{b['vs_default']['low']:+.2f}, {b['vs_default']['high']:+.2f}]")

    result = {"sets": names, "through_product_fusion": product_new, "bm25": {"k1": DEFAULT_K1, "b": DEFAULT_B, "idf": "robertson"}, "noise": noise, "losses": losses,
              "table": table, "summary": summary, "leave_one_out": loso, "held_out_bootstrap": held_bootstrap,
              "load_average_end": os.getloadavg(), "seconds": time.perf_counter() - started}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\nend {time.strftime('%H:%M:%S', time.gmtime())} UTC, {time.perf_counter() - started:.0f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
