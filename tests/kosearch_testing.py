"""Test doubles shared by the plumbing tests (the real encoder is tested separately)."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np


class HashingEncoder:
    """A deterministic bag-of-character-bigrams encoder with the ``Encoder`` interface.

    Texts that share bigrams get similar vectors, so ranking and mining behave meaningfully,
    and it needs no model: plumbing tests run in milliseconds.
    """

    device = "cpu"

    def __init__(self, dimension: int = 64, name: str = "test/hashing-bigrams") -> None:
        self.dimension = dimension
        self.name = name
        self.prompts: dict[str, str] = {}
        self.fingerprint = hashlib.sha256(f"{name}:{dimension}".encode()).hexdigest()[:16]
        self.calls: list[int] = []

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f" {text} "
            for first, second in zip(padded, padded[1:]):
                vectors[row, zlib.crc32((first + second).encode()) % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def encode_documents(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        return self._encode(list(texts))

    def encode_queries(self, texts, batch_size=None, show_progress_bar=False) -> np.ndarray:
        return self._encode(list(texts))


def build_tiny_model(folder, seed: int = 0):
    """Write a tiny, randomly initialised sentence-transformers model folder (BERT, 2 layers, 32 dims).

    It is a real model of the ordinary format, just small: a different encoder from the bundled
    one for refusal tests, and something the training recipes can step in seconds.
    """
    import shutil
    from pathlib import Path

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece
    from tokenizers.processors import TemplateProcessing
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    corpus = [
        "치타가 먹이를 쫓는다", "오늘 날씨가 맑다", "수치 해석 프로그램", "버스 노선이 바뀐다",
        "영화가 재미있다", "도서관은 월요일에 휴관한다", "a quick brown fox jumps over the lazy dog",
    ]
    tokenizer.train_from_iterator(
        corpus, WordPieceTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    )
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    backbone = folder / "_backbone"
    BertModel(config).save_pretrained(backbone)
    fast.save_pretrained(backbone)
    transformer = Transformer(str(backbone), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()])
    model.save(str(folder))
    shutil.rmtree(backbone)
    return folder


class HashingEncoderFactory:
    """Makes a :class:`HashingEncoder` for a device: what a Ray encoding actor is given (it must pickle).

    ``fail_on``: a text containing it makes the encoder raise, to stand for a worker that dies mid-run.
    """

    def __init__(self, dimension: int = 64, fail_on: str | None = None) -> None:
        self.dimension = dimension
        self.fail_on = fail_on

    def __call__(self, device: str) -> HashingEncoder:
        encoder = HashingEncoder(self.dimension)
        if self.fail_on is not None:
            marker, encode = self.fail_on, encoder.encode_documents

            def failing(texts, batch_size=None, show_progress_bar=False):
                if any(marker in text for text in texts):
                    raise RuntimeError(f"worker failure on a text containing {marker!r}")
                return encode(texts)

            encoder.encode_documents = failing
        return encoder


def index_contents(folder) -> dict:
    """Everything an index holds that two builds of one folder must agree on, keyed by (path, position)
    rather than by id; and each unit's vector. Read from the files, as a second process would."""
    import sqlite3
    from pathlib import Path

    from kosearch.store import IndexStore

    db = sqlite3.connect(Path(folder) / "metadata.sqlite")
    documents = sorted(
        db.execute("select root, path, sha256, size, encoding, format, sentences from documents").fetchall()
    )
    rows = db.execute(
        "select s.id, d.path, s.position, s.text, s.line, s.start, s.end, s.page, s.fields, l.tokens "
        "from sentences s join documents d on d.id = s.document_id left join lexical l on l.rowid = s.id"
    ).fetchall()
    skipped = sorted(db.execute("select root, path, reason from skipped").fetchall())
    db.close()
    store = IndexStore.open(Path(folder))
    try:
        vectors = {}
        for ids, batch in store.iter_vectors():
            vectors.update(zip(ids.tolist(), batch))
    finally:
        store.close()
    by_key = {(row[1], row[2]): row[3:] for row in rows}
    vector_by_key = {(row[1], row[2]): vectors[row[0]] for row in rows}
    return {"documents": documents, "units": by_key, "skipped": skipped, "vectors": vector_by_key}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(index, *extra: str, cwd, env: dict | None = None, log=None, wait_seconds: float = 300):
    """``python -m kosearch serve INDEX`` in a subprocess on a free local port, once /health answers.

    Returns ``(process, url)``. Its output goes to the file ``log`` when given, else to pipes. A server
    that exits or does not answer in ``wait_seconds`` raises ``RuntimeError`` with what it printed.
    Shared by the service tests and ``bench/bench_serve_load.py``.
    """
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    output = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE) if log is None else dict(
        stdout=open(log, "w"), stderr=subprocess.STDOUT
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "kosearch", "serve", str(index), "--port", str(port), *extra],
        cwd=cwd, env=env, text=True, **output,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            printed = process.stderr.read() if log is None else open(log).read()
            raise RuntimeError(f"kosearch serve exited: {printed}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"kosearch serve did not answer /health in {wait_seconds:.0f} s")


def write_numbered_documents(folder: Path, files: int = 14, lines: int = 5) -> Path:
    """``files`` small Korean text files of ``lines`` numbered sentences each, every sentence distinct: enough
    checkpoints of a few sentences to fill a merge tier inside one indexing run."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        text = "\n".join(f"문서 {number}의 {line}번째 문장은 영화 리뷰 {number * lines + line} 입니다" for line in range(lines))
        (folder / f"doc_{number:02d}.txt").write_text(text + "\n", encoding="utf-8")
    return folder
