"""The dense std floor of hybrid fusion for one encoder: the fixed floor scaled by the encoder's cosine spread.

Convex fusion divides the dense scores of a query's candidates by ``max(std, floor)``
(:data:`kosearch.search.fusion.DEFAULT_DENSE_STD_FLOOR`, 0.01). That floor was chosen for the bundled e5,
whose cosines are compressed: over a query's candidates their std is usually below it, so e5's dense list
keeps its small spread and BM25 decides more. It is an absolute number on a model's cosine scale, and
another model's cosines lie on another scale: ``kosearch train adapt`` (a contrastive loss at scale 20)
spreads them 4-6x, past the floor, so the same fusion hands the adapted model's dense list several times
the weight against BM25 that the base model had, and dense gains do not reach hybrid (docs/training.md,
"Hybrid after adaptation: a floor relative to the model's spread").

So the floor is expressed in units of the model's own spread: ``floor(model) = floor * spread(model) /
spread(bundled)``, where the spread is measured on :data:`PROBE_SENTENCES`, a fixed list of Korean
sentences written for kosearch (no dataset text): each is encoded as a query and as a document, and the
spread is the median, over the queries, of the std of a query's cosines to the other sentences
(:func:`probe_spread`). Why a fixed probe rather than the index's own vectors: the factor must be 1 for
the bundled encoder whatever the corpus (so the fusion study that chose the floor still describes the
product), must be the same for every index a model serves (so a model's ranking does not shift as a
corpus grows), and must need nothing but the encoder, so a query process can compute it once.

The bundled encoder's factor is exactly 1 by definition (:data:`BUNDLED_PROBE_SPREAD` is the reference
it is divided by; a slow test checks that the bundled model measures that value). Any other model is
measured once per machine and remembered under ``$KOSEARCH_HOME/models/probe-spread.json``, keyed by
the model's fingerprint and :data:`PROBE_VERSION`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from kosearch.encoders.bundled import BUNDLED_ALIASES
from kosearch.encoders.cache import kosearch_home
from kosearch.search.fusion import DEFAULT_DENSE_STD_FLOOR

PROBE_SENTENCES: tuple[str, ...] = (
    "오늘 아침에는 비가 많이 내려서 우산을 챙겼다.",
    "주말에 가족과 함께 근처 산에 올라 도시락을 먹었다.",
    "새로 산 노트북의 배터리가 하루 종일 버틴다.",
    "회의 시간이 오후 세 시로 바뀌었으니 확인해 주세요.",
    "이 식당의 김치찌개는 국물이 진하고 맛있다.",
    "지하철 2호선이 신호 장애로 잠시 멈췄다.",
    "환불을 받으려면 영수증과 카드를 가져오셔야 합니다.",
    "아이가 감기에 걸려서 소아과에 다녀왔다.",
    "이번 학기에는 통계학과 경제학 수업을 듣는다.",
    "비밀번호를 다섯 번 틀리면 계정이 잠깁니다.",
    "전기 요금이 지난달보다 두 배 가까이 나왔다.",
    "도서관은 매주 월요일에 문을 닫는다.",
    "영화가 생각보다 길었지만 결말이 인상적이었다.",
    "택배가 주소 오류로 반송되었다는 문자를 받았다.",
    "매일 삼십 분씩 걷기만 해도 건강에 도움이 된다.",
    "서버 디스크가 가득 차서 로그를 정리해야 한다.",
    "할머니 댁 마당에 감나무가 한 그루 있다.",
    "여권을 새로 만들려면 구청에 사진을 가져가야 한다.",
    "이 프로그램은 한국어 문장을 의미로 찾아 준다.",
    "친구와 다툰 뒤로 며칠째 연락을 하지 않았다.",
    "가을이 되면 공원의 은행나무가 노랗게 물든다.",
    "보고서 마감이 내일이라 밤늦게까지 일했다.",
    "고양이가 창가에 앉아 햇볕을 쬐고 있다.",
    "주택 담보 대출 금리가 다시 오르기 시작했다.",
    "축구 경기는 연장전 끝에 승부차기로 끝났다.",
    "냉장고 문이 제대로 닫히지 않아 수리를 불렀다.",
    "이사할 집을 구하느라 부동산을 여러 곳 돌았다.",
    "시험 범위가 넓어서 무엇부터 공부할지 모르겠다.",
    "커피를 너무 많이 마셔서 잠이 오지 않는다.",
    "새 스마트폰으로 바꾸고 사진을 옮기는 데 한참 걸렸다.",
    "지역 축제에서 전통 음식을 나누어 주었다.",
    "계약서에 서명하기 전에 조항을 꼼꼼히 읽어야 한다.",
    "눈이 많이 와서 출근길 도로가 꽉 막혔다.",
    "그 가수의 새 앨범은 발매 첫날 매진되었다.",
    "약은 하루 세 번 식후 삼십 분에 드세요.",
    "운동화 끈이 자꾸 풀려서 다시 묶었다.",
    "온라인 강의는 원하는 시간에 들을 수 있어 편하다.",
    "바닷가 마을에서 싱싱한 회를 먹었다.",
    "엘리베이터 점검으로 오늘은 계단을 이용해 주십시오.",
    "혼자 사는 사람이 늘면서 소포장 식품이 많아졌다.",
)
"""Korean sentences written for kosearch (everyday topics, no dataset text): the probe of :func:`probe_spread`.
Changing them changes every model's measured spread, so :data:`PROBE_VERSION` is derived from them."""
PROBE_VERSION = hashlib.sha256("\n".join(PROBE_SENTENCES).encode("utf-8")).hexdigest()[:12]
"""Keys the cache, so an edited probe is measured again (and :data:`BUNDLED_PROBE_SPREAD` must be re-measured)."""
BUNDLED_PROBE_SPREAD = 0.01914
"""The bundled e5's :func:`probe_spread` (measured; ``tests/test_dense_floor_real.py`` checks it): the reference
whose floor is :data:`~kosearch.search.fusion.DEFAULT_DENSE_STD_FLOOR` itself."""
CACHE_NAME = "probe-spread.json"

_lock = threading.Lock()
_measured: dict[str, float] = {}


class ProbeEncoder(Protocol):
    """What :func:`probe_spread` needs of an encoder (:class:`kosearch.encoders.Encoder` has it)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_documents(self, texts: list[str]) -> np.ndarray: ...


def probe_spread(encoder: ProbeEncoder, sentences: tuple[str, ...] = PROBE_SENTENCES) -> float:
    """Median over the probe sentences (as queries) of the std of their cosines to the other sentences (as documents).

    Each query's own sentence is left out: it is the one near-duplicate, not part of the spread of
    candidates a query meets. The median, not the mean, so one odd sentence does not move it.
    """
    queries = np.asarray(encoder.encode_queries(list(sentences)), dtype=np.float64)
    documents = np.asarray(encoder.encode_documents(list(sentences)), dtype=np.float64)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    cosines = queries @ documents.T
    others = ~np.eye(len(sentences), dtype=bool)
    return float(np.median([row[mask].std() for row, mask in zip(cosines, others)]))


def spread_factor(encoder: object) -> float:
    """``spread(encoder) / spread(bundled)``: exactly 1.0 for the bundled encoder, measured once per model otherwise.

    ``encoder`` needs ``encode_queries``, ``encode_documents`` and a ``fingerprint`` (the cache key); one
    without a fingerprint is measured each process. The bundled encoder is known by its name
    (:data:`~kosearch.encoders.bundled.BUNDLED_ALIASES`) and never encoded here.
    """
    if getattr(encoder, "name", None) in BUNDLED_ALIASES:
        return 1.0
    return _spread_of(encoder) / BUNDLED_PROBE_SPREAD


def dense_std_floor(encoder: object, base: float | None = DEFAULT_DENSE_STD_FLOOR) -> float | None:
    """The dense std floor convex fusion uses with ``encoder``'s scores: ``base * spread_factor(encoder)``.

    ``base`` None (plain z-scores) stays None and measures nothing.
    """
    if base is None:
        return None
    return base * spread_factor(encoder)


def _spread_of(encoder: object) -> float:
    fingerprint = getattr(encoder, "fingerprint", None)
    key = f"{fingerprint}|{PROBE_VERSION}" if isinstance(fingerprint, str) else None
    with _lock:
        if key is not None and key in _measured:
            return _measured[key]
        cached = _read_cache().get(key) if key is not None else None
        if isinstance(cached, (int, float)) and cached > 0:
            _measured[key] = float(cached)
            return float(cached)
        spread = probe_spread(encoder)  # type: ignore[arg-type]
        if not spread > 0:
            raise ValueError(f"the encoder's cosines on the probe sentences do not vary (spread {spread}); "
                             "it cannot rank anything")
        if key is not None:
            _measured[key] = spread
            _write_cache(key, spread)
        return spread


def _cache_file() -> Path:
    return kosearch_home() / "models" / CACHE_NAME


def _read_cache() -> dict[str, float]:
    try:
        entries = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _write_cache(key: str, spread: float) -> None:
    """Add one entry, written atomically (a temporary file renamed over the old one); a cache that cannot be
    written is not an error: the spread is measured again next process."""
    try:
        folder = _cache_file().parent
        folder.mkdir(parents=True, exist_ok=True)
        entries = {**_read_cache(), key: spread}
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".probe-spread-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.replace(temporary, _cache_file())
    except OSError:
        return
