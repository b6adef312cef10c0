"""Write the office documents of the sample corpus: corpora/sample/문서/ (PDF, DOCX, HWPX, HWP, HTML).

The text below is original, written for kosearch; places and names are invented. The files are
generated, not hand-made, so that they can be rebuilt exactly: the writers (tests/document_writers.py,
the same ones the tests use) produce the same bytes for the same text, and the files are committed so
that the quick start needs no writer library. Run from the repository root after changing the text:

    python corpora/make_sample_documents.py

then update the sentence counts in corpora/sample/README.md (tests/test_sample_corpus.py checks them).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from document_writers import write_docx, write_hangul, write_pdf  # noqa: E402

FOLDER = ROOT / "corpora" / "sample" / "문서"

LIBRARY_NOTICE = [
    [
        "햇살동 작은도서관 이전 안내",
        "햇살동 작은도서관이 더 넓은 곳으로 자리를 옮깁니다. 이전 작업 때문에 6월 3일부터 6월 16일까지 "
        "2주 동안 도서관 문을 닫습니다.",
        "휴관 기간에는 책을 빌릴 수 없지만, 이미 빌린 책의 반납 기한은 6월 30일까지 자동으로 늘어납니다.",
        "정기 간행물과 어린이 그림책은 이사하기 전에 새로 분류해서 서가에 다시 꽂을 예정입니다.",
        "이전을 돕고 싶은 주민은 5월 말까지 자원봉사 신청서를 내 주세요.",
    ],
    [
        "새 도서관은 햇살동 복합문화센터 3층에 있습니다.",
        "6월 17일 월요일 오전 10시에 다시 문을 엽니다.",
        "평일 운영 시간은 오전 10시부터 오후 8시까지로 지금보다 한 시간 늘어납니다.",
        "새 도서관에는 노트북을 쓸 수 있는 열람석 40개와 유아 전용 놀이 공간이 생깁니다.",
        "궁금한 점은 도서관 누리집 게시판에 남겨 주시면 사서가 답해 드립니다.",
    ],
]

MINUTES = [
    "달빛마을 2단지 입주자대표회의 회의록",
    "일시는 4월 11일 목요일 저녁 7시 30분이며, 장소는 관리사무소 2층 회의실이다.",
    "동대표 9명 가운데 8명이 참석해 회의가 성립했다.",
    [
        ["안건", "논의 내용", "결정"],
        ["승강기 교체", "15년 된 승강기 두 대는 부품을 더 구하기 어렵다는 점검 결과가 보고되었다.",
         "장기수선충당금으로 내년 봄에 두 대 모두 교체한다."],
        ["경비실 냉방", "여름마다 경비실이 너무 덥다는 의견이 이어졌다.", "모든 경비실에 6월 안에 에어컨을 단다."],
        ["택배 보관", "택배 상자가 현관 앞을 막는다는 불만이 많았다.", "무인 택배함을 12칸 더 설치한다."],
    ],
    "다음 회의는 5월 9일 같은 시각에 열기로 했다.",
    "회의록은 관리사무소 게시판과 단지 누리집에 일주일 동안 게시한다.",
]

RIVER_REPORT = [
    "2024년 봄 물빛천 수질 조사 보고서",
    "물빛천 상류와 중류, 하류의 세 지점에서 4월 한 달 동안 매주 물을 떠서 분석했다.",
    "상류는 용존 산소가 충분하고 물이 맑아 1급수 기준을 만족했다.",
    "중류에서는 비가 온 다음 날 탁도가 크게 높아졌다.",
    "하류는 생활 하수가 흘러드는 배수구 근처에서 총인 농도가 기준을 넘었다.",
    [
        ["지점", "용존 산소", "판정"],
        ["상류", "리터당 9.8밀리그램", "좋음"],
        ["중류", "리터당 7.1밀리그램", "보통"],
        ["하류", "리터당 4.3밀리그램", "나쁨"],
    ],
    "조사팀은 하류 배수구에 침전 시설을 설치하고 여름철에 한 번 더 조사할 것을 제안한다.",
    "주민이 함께하는 하천 정화 활동도 분기마다 열 계획이다.",
]

HEAT_SHELTER = [
    "무더위 쉼터 운영 알림",
    "폭염 특보가 내려진 날에는 경로당과 주민센터 강당을 무더위 쉼터로 엽니다.",
    "쉼터는 오전 9시부터 오후 9시까지 운영하며 시원한 물과 부채를 나누어 드립니다.",
    "몸이 불편한 어르신이 전화로 신청하시면 직원이 모시러 갑니다.",
    [["쉼터", "위치"], ["햇살 경로당", "햇살동 12번길 5"], ["주민센터 강당", "주민센터 1층"]],
    "한낮에는 바깥 활동을 줄이고 물을 자주 마시는 것이 좋습니다.",
]

MUSEUM_PAGE = """<!DOCTYPE html>
<html lang="ko">
<head>
<meta charset="utf-8">
<title>달빛 시립미술관 관람 안내</title>
<style>body { font-family: sans-serif; } .note { color: #666; }</style>
<script>document.documentElement.dataset.visited = "스크립트 안의 글은 색인되지 않는다";</script>
</head>
<body>
<h1>관람 안내</h1>
<p>달빛 시립미술관은 화요일부터 일요일까지 오전 10시에 문을 열고 오후 6시에 닫습니다.
매주 월요일과 설날, 추석 당일에는 쉽니다.</p>
<p>상설 전시는 누구나 무료로 볼 수 있고, <b>기획 전시</b>는 어른 3천 원, 청소년 천 원입니다.</p>
<h2>관람 예절 &amp; 편의 시설</h2>
<ul>
<li>전시실 안에서는 음식을 먹을 수 없습니다.</li>
<li>사진은 플래시를 끄고 찍어 주세요.</li>
<li>유모차와 휠체어는 안내 데스크에서 빌려 드립니다.</li>
</ul>
<h2>찾아오는 길</h2>
<p class="note">달빛역 버스 정류장에서 내려 공원 쪽으로 걸어서 5분 거리입니다.<br>
미술관 앞 길이 좁으니 되도록 대중교통을 이용해 주세요.</p>
</body>
</html>
"""


def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    written = [
        write_pdf(FOLDER / "작은도서관_이전_안내.pdf", LIBRARY_NOTICE),
        write_docx(FOLDER / "입주자대표회의_회의록.docx", MINUTES),
        write_hangul(FOLDER / "물빛천_수질_조사_보고서.hwpx", RIVER_REPORT, "hwpx"),
        write_hangul(FOLDER / "무더위_쉼터_운영_알림.hwp", HEAT_SHELTER, "hwp"),
    ]
    page = FOLDER / "미술관_관람_안내.html"
    page.write_text(MUSEUM_PAGE, encoding="utf-8")
    for path in [*written, page]:
        print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
