"""Export a sentence-transformers folder to ONNX (float32, and int8 by dynamic quantisation), once per machine.

Why not ``SentenceTransformer(folder, backend="onnx")``: sentence-transformers 6 loads and exports ONNX models
through ``optimum-onnx``, whose newest release (0.1.0) requires transformers < 4.58 and fails to import under
transformers 5 (``is_offline_mode`` moved; optimum-onnx issue #114), while sentence-transformers 6 requires
transformers >= 5. Until they agree, kosearch does the same two steps itself with the libraries underneath:

- **Export** (needs torch, once): the whole SentenceTransformer pipeline (Transformer [-> WordWeights] -> Pooling
  -> Normalize) is traced by ``torch.onnx.export`` into one graph ``(input_ids, attention_mask) ->
  sentence_embedding``, with batch and sequence axes dynamic and eager attention (the SDPA kernel traces into
  shape-specialised ops).
- **Quantisation**: ``onnxruntime.quantization.quantize_dynamic`` with the settings of
  ``sentence_transformers.backend.export_dynamic_quantized_onnx_model(model, "avx512_vnni", ...)`` (optimum's
  ``AutoQuantizationConfig.avx512_vnni(is_static=False)``): every MatMul/Gemm/Attention, int8 weights per
  channel and symmetric, uint8 activations quantised per batch. The file takes ST's name for it.

Every export is checked before it is kept: the ONNX graph must reproduce the torch model's vectors on probe
sentences of different lengths in one padded batch (cosine >= :data:`MIN_EXPORT_COSINE`), which also proves the
traced graph did not freeze a batch or sequence length. A model the graph cannot reproduce is refused with a
:class:`~kosearch.errors.KosearchError` naming the torch backend.

Files live in ``$KOSEARCH_HOME/models/onnx/<model folder name>-<fingerprint>-x<ONNX_EXPORT_VERSION>/``, beside the
converted bundled model: the model's fingerprint (its weights, tokenizer, pooling and prompts) names the folder,
so a retrained model gets a new export and an unchanged one is never exported twice. The folder is written as a
temporary sibling and renamed into place (the quantised file by a temporary name and ``os.replace``), under the
same cross-process lock as the bundled conversion, so readers never see half a model.
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

from kosearch.encoders.cache import exclusive_lock, models_dir
from kosearch.errors import KosearchError

ONNX_EXPORT_VERSION = 1
"""Bump when the exported graph or the quantisation settings change: the new folder name forces a new export."""
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_qint8_avx512_vnni.onnx"
"""The name ``export_dynamic_quantized_onnx_model(model, "avx512_vnni", ...)`` gives its file."""
EXPORT_RECORD = "export.json"
"""Written last into the temporary folder: a folder without it is not a finished export."""
TOKENIZER_FILE = "tokenizer.json"
OPSET = 17
MIN_EXPORT_COSINE = 0.9999
"""Float32 ONNX and torch differ only in the order of float32 sums: measured >= 0.99999 for the bundled model."""
PROBE_TEXTS = (
    "query: 치타가 먹이를 쫓는다",
    "passage: 치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다. 그 뒤로 먼지가 길게 피어오른다.",
    "passage: 서울은 대한민국의 수도이며, 한강이 도시를 가로질러 흐른다. 인구는 약 천만 명이다. "
    "조선 시대부터 정치와 경제의 중심지였다.",
    "query: 영화",
)

logger = logging.getLogger(__name__)


def onnx_export_folder(model_folder: Path, fingerprint: str) -> Path:
    """Where the ONNX files of the model in ``model_folder`` (with that fingerprint) are kept."""
    return models_dir() / "onnx" / f"{Path(model_folder).name}-{fingerprint}-x{ONNX_EXPORT_VERSION}"


def onnx_model_file(model_folder: str | os.PathLike[str], fingerprint: str, *, quantized: bool) -> Path:
    """The float32 (or int8) ONNX file of ``model_folder``, exporting (and quantising) it first if needed.

    ``fingerprint`` is the model's :func:`~kosearch.encoders.fingerprint.model_fingerprint`, passed in
    because the caller (:class:`~kosearch.encoders.Encoder`) has it already.
    """
    model_folder = Path(model_folder)
    target = onnx_export_folder(model_folder, fingerprint)
    wanted = target / (INT8_FILE if quantized else FLOAT_FILE)
    if _is_complete(target) and wanted.is_file():
        return wanted
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(target.parent / f"{target.name}.lock"):
        if not _is_complete(target):  # another process may have finished while we waited
            _export_atomically(model_folder, target)
        if quantized and not wanted.is_file():
            _quantize_atomically(target)
    return wanted


def read_export_record(onnx_file: Path) -> dict:
    """What the export recorded beside ``onnx_file``: dimension, max sequence length, prompts, cosines."""
    return json.loads((onnx_file.parent / EXPORT_RECORD).read_text(encoding="utf-8"))


def unsupported_reason(model_folder: str | os.PathLike[str]) -> str | None:
    """Why kosearch cannot run ``model_folder`` with ONNX Runtime, or None when it can try.

    The runtime tokenizes with ``tokenizers`` (no transformers import), so the folder needs a
    ``tokenizer.json``, and it feeds the graph token ids and a mask only, so the modules must be a
    Transformer followed by modules that work on its output alone (Pooling, Dense, Normalize), or on the token
    ids the graph has (WordWeights, right after the Transformer: ``kosearch train adapt``'s token weights).
    """
    folder = Path(model_folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        bert_config = _read_optional(folder / "sentence_bert_config.json")
    except (OSError, ValueError) as exc:
        return f"no readable modules.json ({exc})"
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    rest = kinds[2:] if kinds[1:2] == ["WordWeights"] else kinds[1:]  # token weights read the ids, which it has
    if not kinds or kinds[0] != "Transformer" or not set(rest) <= {"Pooling", "Dense", "Normalize"}:
        return (f"its modules {kinds} are not a Transformer followed by Pooling, Dense or Normalize (with token "
                "weights, WordWeights, between the Transformer and the Pooling)")
    if bert_config.get("do_lower_case"):
        return "it lower-cases text before tokenizing (do_lower_case), which the ONNX runtime does not"
    if not (folder / TOKENIZER_FILE).is_file():
        return f"it has no {TOKENIZER_FILE} (a fast tokenizer file)"
    return None


def _is_complete(folder: Path) -> bool:
    return (folder / EXPORT_RECORD).is_file() and (folder / FLOAT_FILE).is_file()


def _export_atomically(model_folder: Path, target: Path) -> None:
    reason = unsupported_reason(model_folder)
    if reason is not None:
        raise KosearchError(
            f"The ONNX encoder backends cannot run the model in {model_folder}: {reason}. "
            "Use --encoder-backend torch for it."
        )
    if target.exists():  # unfinished (no record): set aside, never delete what another tool may own
        with contextlib.suppress(OSError):
            os.replace(target, target.with_name(f"{target.name}.broken-{os.getpid()}-{time.time_ns()}"))
    temporary = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(temporary, 0o755)
        started = time.monotonic()
        logger.info(
            "exporting %s to ONNX (once per model on this machine, about a minute) into %s ...",
            model_folder.name, target,
        )
        record = export_float_model(model_folder, temporary / FLOAT_FILE)
        shutil.copyfile(model_folder / TOKENIZER_FILE, temporary / TOKENIZER_FILE)
        (temporary / EXPORT_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(temporary, target)
        except OSError:
            if not _is_complete(target):
                raise
        logger.info("ONNX export ready after %.0f s", time.monotonic() - started)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def export_float_model(model_folder: Path, destination: Path) -> dict:
    """Trace ``SentenceTransformer(model_folder)`` into the float32 graph at ``destination``; returns the record
    (dimension, max_seq_length, prompts, worst probe cosine to torch). Raises if the graph disagrees with torch."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(model_folder), device="cpu", model_kwargs={"attn_implementation": "eager"}
    ).eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    # Two texts of different lengths, so the traced graph pads and masks as it must at run time.
    sample = _token_batch(model_folder, model.max_seq_length, list(PROBE_TEXTS[:2]))
    dynamic = {"batch": 0, "sequence": 1}
    with torch.no_grad(), _quiet_export():
        torch.onnx.export(
            SentenceEmbedding().eval(),
            (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])),
            str(destination),
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript, one more dependency
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {axis: name for name, axis in dynamic.items()},
                "attention_mask": {axis: name for name, axis in dynamic.items()},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
        )
    probe = _token_batch(model_folder, model.max_seq_length, list(PROBE_TEXTS))
    with torch.no_grad():
        features = {name: torch.from_numpy(values) for name, values in probe.items()}
        expected = model(features)["sentence_embedding"].numpy()
    got = _run(destination, probe)
    cosine = _worst_cosine(expected, got)
    if cosine < MIN_EXPORT_COSINE:
        raise KosearchError(
            f"The ONNX export of {model_folder} does not reproduce its torch vectors (worst cosine {cosine:.6f} "
            f"on probe sentences, below {MIN_EXPORT_COSINE}); use --encoder-backend torch for this model."
        )
    return {
        "export_version": ONNX_EXPORT_VERSION,
        "source_folder": str(model_folder),
        "dimension": int(expected.shape[1]),
        "max_seq_length": int(model.max_seq_length),
        "prompts": dict(model.prompts),
        "float_probe_cosine": cosine,
        "opset": OPSET,
        "torch_version": torch.__version__,
    }


def _quantize_atomically(target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    started = time.monotonic()
    logger.info("quantising the ONNX model to int8 (once per model on this machine) ...")
    fd, temporary = tempfile.mkstemp(prefix=f"{INT8_FILE}.tmp-", suffix=".onnx", dir=target)
    os.close(fd)
    try:
        with _quiet_export():
            quantize_dynamic(
                target / FLOAT_FILE,
                temporary,
                per_channel=True,
                reduce_range=False,
                weight_type=QuantType.QInt8,
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
        os.chmod(temporary, 0o644)
        os.replace(temporary, target / INT8_FILE)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    logger.info("int8 ONNX model ready after %.0f s", time.monotonic() - started)


def _token_batch(model_folder: Path, max_seq_length: int, texts: list[str]) -> dict[str, np.ndarray]:
    """Pad ``texts`` the way :class:`~kosearch.encoders.onnx_runtime.OnnxSentenceEncoder` does at run time."""
    from kosearch.encoders.onnx_runtime import load_tokenizer, padded_batch

    tokenizer = load_tokenizer(model_folder / TOKENIZER_FILE, max_seq_length)
    return padded_batch(tokenizer.encode_batch(texts))


def _run(onnx_file: Path, batch: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    return session.run(None, batch)[0]


def _worst_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64)).min())


@contextlib.contextmanager
def _quiet_export():
    """The exporter's tracer warnings (Python conditions frozen at trace time) are expected here: the probe check
    above is what proves the graph right. They would otherwise scroll past the user on first use."""
    import warnings

    quantizer_logger = logging.getLogger()  # onnxruntime.quantization warns on the root logger
    level = quantizer_logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantizer_logger.setLevel(max(level, logging.ERROR))
        try:
            yield
        finally:
            quantizer_logger.setLevel(level)


def _read_optional(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
