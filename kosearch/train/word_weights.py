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
    BM25 gives a query term that is rare."""
    counts, total = token_document_counts(tokenizer, passages)
    fixed = set(tokenizer.all_special_ids)
    for prompt in prompts:
        if prompt:
            fixed.update(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    weights = [idf(counts.get(token, 0), total) ** power for token in range(len(tokenizer))]
    for token in fixed:
        if 0 <= token < len(weights):
            weights[token] = FIXED_WEIGHT
    return weights


def add_word_weights(model: SentenceTransformer, passages: Iterable[str], *, power: float = IDF_POWER) -> int:
    """Put a frozen ``WordWeights`` module with :func:`domain_word_weights` right before ``model``'s mean
    ``Pooling``; returns the number of passages counted.

    Raises:
        ValueError: the model does not mean-pool right after its first module (the weights only mean something
            in a weighted mean), or it already has token weights.
    """
    from sentence_transformers.sentence_transformer.modules import Pooling, WordWeights

    modules = list(model._modules.values())
    if any(isinstance(module, WordWeights) for module in modules):
        raise ValueError("the model already has token weights (a WordWeights module)")
    if len(modules) < 2 or not isinstance(modules[1], Pooling) or modules[1].pooling_mode != "mean":
        raise ValueError("token weights need a model that mean-pools its first module's output")
    passages = list(passages)
    tokenizer = model.tokenizer
    ordered = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    if [index for _, index in ordered] != list(range(len(ordered))) or len(ordered) != len(tokenizer):
        raise ValueError("the tokenizer's vocabulary is not numbered 0..n-1, as WordWeights needs")
    vocab = [token for token, _ in ordered]
    weights = domain_word_weights(tokenizer, passages, prompts=list(model.prompts.values()), power=power)
    module = WordWeights(vocab, *_compact(vocab, weights))
    module.emb_layer.weight.requires_grad_(False)
    module.to(model.device)
    names = list(model._modules)
    rebuilt = [(names[0], modules[0]), ("word_weights", module), *zip(names[1:], modules[1:])]
    model._modules.clear()
    for index, (_, value) in enumerate(rebuilt):
        model._modules[str(index)] = value
    return len(passages)


def _compact(vocab: Sequence[str], weights: Sequence[float]) -> tuple[dict[str, float], float]:
    """``WordWeights``' (word_weights, unknown_word_weight) for ``weights``: the weight most tokens share (that of
    a token the folder never contains) as the default, and the others by token. The module saves its mapping as
    JSON, so listing all 250,002 tokens of the bundled vocabulary would write 21 MB where about 1 MB is needed.
    ``WordWeights`` falls back to a token's lower-case form, so a default token whose lower-case form has a
    weight of its own is listed too."""
    default = Counter(weights).most_common(1)[0][0]
    table = {token: weight for token, weight in zip(vocab, weights) if weight != default}
    for token in vocab:
        if token not in table and token.lower() in table:
            table[token] = default
    return table, default
