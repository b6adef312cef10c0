"""Token weights from the domain's own text: pooling that leans on the words that are rare in the domain.

A mean-pooling encoder (the bundled e5, most Korean sentence encoders) averages its token vectors, so a word that
every passage of the domain contains weighs as much as the rare term a question and its answer share. Weighting
each token by its inverse document frequency in the adaptation folder (BM25's ``idf``) moves the sentence vector
towards the domain's informative words. It needs no labels and no training, only a count of the folder's tokens,
and it is sentence-transformers' own ``WordWeights`` module placed before ``Pooling``, so the adapted folder loads
in ``SentenceTransformer`` (and kosearch's ONNX export) as any other.

Measured (docs/training.md, "Domain token weights"; ``bench/adapt_word_weights.py``; bundled e5, exact cosine,
each document one vector), ``idf ** 1`` against the model's mean: NSMC "which movie" dense nDCG@10 17.48 -> 18.63,
chatbot question -> answer 7.09 -> 7.82, and KorSTS test (query side) *up* 0.7 points with either folder's counts:
down-weighting what is frequent helps general similarity too. Powers above 1 helped the chatbot set more and
cost KorSTS from 3 on (``idf ** 3``: -0.5, NSMC -1.4), so the exponent stays at 1.

The prompt's tokens and the tokenizer's special tokens keep weight 1: they are in every text, so a count would
give them the lowest weight, but the e5 models were trained to read the prompt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

IDF_POWER = 1.0
"""Exponent of the weights (``idf ** IDF_POWER``); see the module docstring for the measurement behind 1."""
FIXED_WEIGHT = 1.0
"""Weight of the prompt's and the special tokens."""
_BATCH = 512


def idf(documents_with_token: int, documents: int) -> float:
    """BM25's inverse document frequency, ``ln(1 + (N - df + 0.5) / (df + 0.5))``: positive for every ``df``."""
    return math.log1p((documents - documents_with_token + 0.5) / (documents_with_token + 0.5))


def token_document_counts(tokenizer, passages: Iterable[str]) -> tuple[Counter[int], int]:
    """In how many passages each token id occurs (``tokenizer``'s own pieces, no special tokens), and the count."""
    counts: Counter[int] = Counter()
    total = 0
    batch: list[str] = []

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            counts.update(set(ids))
        batch.clear()

    for passage in passages:
        batch.append(passage)
        total += 1
        if len(batch) == _BATCH:
            flush()
    if batch:
        flush()
    return counts, total


def domain_word_weights(
    tokenizer, passages: Iterable[str], *, prompts: Sequence[str] = (), power: float = IDF_POWER
) -> list[float]:
    """One weight per token id of ``tokenizer``: ``idf ** power`` over ``passages``; :data:`FIXED_WEIGHT` for the
    special tokens and the tokens of ``prompts``. A token the passages never contain gets the largest weight, as
    BM25 gives a query term that is rare.

    A prompt's tokens are those of the prompt without its trailing space: SentencePiece tokenizers (XLM-R's) read
    ``"query: "`` alone as ``▁que ry : ▁``, but the ``▁`` is part of the next word's piece in a real text, and a
    stand-alone ``▁`` is a content piece of its own elsewhere."""
    counts, total = token_document_counts(tokenizer, passages)
    fixed = set(tokenizer.all_special_ids)
    for prompt in prompts:
        if prompt.strip():
            fixed.update(tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"])
    weights = [idf(counts.get(token, 0), total) ** power for token in range(len(tokenizer))]
    for token in fixed:
        if 0 <= token < len(weights):
            weights[token] = FIXED_WEIGHT
    return weights


def has_word_weights(model: SentenceTransformer) -> bool:
    """Whether ``model`` already weights its tokens (a ``WordWeights`` module, e.g. an adapted model)."""
    from sentence_transformers.sentence_transformer.modules import WordWeights

    return any(isinstance(module, WordWeights) for module in model)


def word_weights_problem(model: SentenceTransformer) -> str | None:
    """Why the folder's token weights cannot go into ``model``, or None when they can."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    modules = list(model)
    if has_word_weights(model):
        return "it already has token weights (a WordWeights module)"
    if len(modules) < 2 or not isinstance(modules[1], Pooling) or modules[1].pooling_mode != "mean":
        return "token weights need a model that mean-pools its first module's output"
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or sorted(tokenizer.get_vocab().values()) != list(range(len(tokenizer))):
        return "its tokenizer's vocabulary is not numbered 0..n-1, as WordWeights needs"
    return None


def add_word_weights(model: SentenceTransformer, passages: Iterable[str], *, power: float = IDF_POWER) -> int:
    """Put a frozen ``WordWeights`` module with :func:`domain_word_weights` right before ``model``'s mean
    ``Pooling``; returns the number of passages counted.

    Raises:
        ValueError: :func:`word_weights_problem` names a reason.
    """
    from sentence_transformers.sentence_transformer.modules import WordWeights

    problem = word_weights_problem(model)
    if problem is not None:
        raise ValueError(problem)
    passages = list(passages)
    tokenizer = model.tokenizer
    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    weights = domain_word_weights(tokenizer, passages, prompts=list(model.prompts.values()), power=power)
    insert_word_weights(model, WordWeights(vocab, *_compact(vocab, weights)))
    return len(passages)


def insert_word_weights(model: SentenceTransformer, module) -> None:
    """Put ``module`` (a ``WordWeights``) second in ``model``, frozen and on the model's device. Later modules move
    one place on, and so do their forward keyword arguments (``module_kwargs`` is keyed by position)."""
    module.to(model.device)
    freeze(module)
    modules = list(model)
    model._modules.clear()
    for index, value in enumerate([modules[0], module, *modules[1:]]):
        model._modules[str(index)] = value
    kwargs = getattr(model, "module_kwargs", None)
    if kwargs:
        model.module_kwargs = {
            (str(int(key) + 1) if key.isdigit() and int(key) >= 1 else key): value for key, value in kwargs.items()
        }


def freeze_word_weights(model: SentenceTransformer) -> None:
    """Keep every ``WordWeights`` of ``model`` out of training. The weights are the folder's statistics, not
    parameters to learn, and sentence-transformers reloads the module from its config alone, so a trained table
    would be scored in memory and then lost on reload."""
    from sentence_transformers.sentence_transformer.modules import WordWeights

    for module in model:
        if isinstance(module, WordWeights):
            freeze(module)


def freeze(module) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def saved_word_weights(folder: str | Path):
    """The ``WordWeights`` module of a saved model or checkpoint folder, or None when it has none."""
    from sentence_transformers.sentence_transformer.modules import WordWeights

    entry = _saved_word_weights_entry(Path(folder))
    return None if entry is None else WordWeights.load(str(folder), subfolder=entry.get("path", ""))


def has_saved_word_weights(folder: str | Path) -> bool:
    """Whether a saved model or checkpoint folder has a ``WordWeights`` module, from its ``modules.json`` alone
    (loading the table reads megabytes of JSON)."""
    return _saved_word_weights_entry(Path(folder)) is not None


def _saved_word_weights_entry(folder: Path) -> dict | None:
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((entry for entry in modules if isinstance(entry, dict)
                 and str(entry.get("type", "")).rsplit(".", 1)[-1] == "WordWeights"), None)


def _compact(vocab: Sequence[str], weights: Sequence[float]) -> tuple[dict[str, float], float]:
    """``WordWeights``' (word_weights, unknown_word_weight) for ``weights``: the weight most tokens share (that of
    a token the folder never contains) as the default, and the others by token. The module saves its whole
    vocabulary and this mapping in its config as JSON; for the bundled model's 250,002 tokens the vocabulary
    alone is 8 MB, and listing every weight as well would make it 21 MB. ``WordWeights`` falls back to a token's
    lower-case form, so a default token whose lower-case form has a weight of its own is listed too."""
    default = Counter(weights).most_common(1)[0][0]
    table = {token: weight for token, weight in zip(vocab, weights) if weight != default}
    for token in vocab:
        if token not in table and token.lower() in table:
            table[token] = default
    return table, default
