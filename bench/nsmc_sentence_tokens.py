"""NSMC reviews as Kiwi sentences with their lexical tokens, analysed once and cached on disk.

The postings bench needs a million sentence units with the morphemes kosearch's ingest would store
for them. Kiwi over the 712k reviews takes tens of minutes on this shared 2-core machine, so the
result is kept under ``--cache`` (default ~/.cache/kosearch-bench/nsmc_sentence_tokens) in files of
``CHUNK`` reviews; a run that stops keeps the finished files and the next one continues.

One Kiwi pass per review: ``split_into_sents(..., return_tokens=True, split_complex=True)`` gives the
sentences and their morphemes together; :meth:`MorphemeAnalyzer.select` keeps the same tokens the
ingest keeps. (The ingest analyses each sentence again after splitting; a sentence's morphemes can
differ at its edges, which does not change what is measured here: posting lengths and query cost.)
Reviews are taken in file order, except the last ``HELD_OUT`` (the queries), which are never indexed.

File format: first line ``# sentences``, then one line per sentence, its tokens joined by spaces
(an empty line for a sentence without tokens).

Usage: nice -n 19 python bench/nsmc_sentence_tokens.py [--sentences 1000000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path.home() / ".cache" / "kosearch-bench" / "nsmc_sentence_tokens"
CHUNK = 20000
HELD_OUT = 200


def read_reviews() -> list[str]:
    """Non-empty NSMC reviews in file order, whitespace collapsed (``nsmc_bench_data.read_reviews``)."""
    import nsmc_bench_data

    return [review for _, review in nsmc_bench_data.read_reviews()]


def held_out_queries() -> list[str]:
    return read_reviews()[-HELD_OUT:]


def _read_chunk(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    count = int(lines[0].lstrip("# "))
    return [line.split() for line in lines[1 : 1 + count]]


def sentence_tokens(sentences: int, cache: Path = CACHE, *, analyse: bool = True, log=print) -> list[list[str]]:
    """Tokens of the first ``sentences`` sentence units of NSMC (fewer if NSMC has fewer).

    Cached chunks are read; missing ones are analysed (``analyse=True``) or the list stops there.
    """
    cache.mkdir(parents=True, exist_ok=True)
    reviews = read_reviews()[:-HELD_OUT]
    units: list[list[str]] = []
    analyzer = kiwi = None
    for number, start in enumerate(range(0, len(reviews), CHUNK)):
        if len(units) >= sentences:
            break
        path = cache / f"chunk_{number:04d}.txt"
        if not path.is_file():
            if not analyse:
                break
            if analyzer is None:
                from kosearch.search.morphemes import MorphemeAnalyzer

                analyzer = MorphemeAnalyzer()
                kiwi = analyzer._kiwi()
            started = time.perf_counter()
            chunk = reviews[start : start + CHUNK]
            split = kiwi.split_into_sents(
                chunk, return_tokens=True, return_sub_sents=False, split_complex=analyzer.options.split_complex
            )
            lines = [
                " ".join(analyzer.select((token.form, token.tag) for token in sentence.tokens))
                for review in split
                for sentence in review
                if any(char.isalnum() for char in sentence.text)
            ]
            temporary = path.with_suffix(".tmp")
            temporary.write_text(f"# {len(lines)}\n" + "\n".join(lines), encoding="utf-8")
            temporary.replace(path)
            log(f"chunk {number}: {len(chunk)} reviews -> {len(lines)} sentences in "
                f"{time.perf_counter() - started:.0f}s", flush=True)
        units.extend(_read_chunk(path))
    return units[:sentences]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    started = time.perf_counter()
    units = sentence_tokens(args.sentences, args.cache)
    print(f"{len(units)} sentences, {sum(map(len, units))} tokens, {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
