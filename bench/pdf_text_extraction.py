"""Why kosearch reads PDF with pypdfium2: text extraction time and fidelity against pypdf, in one run.

Writes a Korean PDF of N pages (default 40) with reportlab's built-in Korean CID font (the
fixture writer the tests use), then extracts every page's text with pypdfium2 (PDFium) and with
pypdf (pure Python), several rounds each, and prints the time per page of each, their ratio,
and how many of the written sentences each one's text contains (whitespace ignored, since both
break lines where the layout does).

pypdf is not a kosearch dependency: ``pip install pypdf`` to run this.

Usage: python bench/pdf_text_extraction.py [--pages 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from document_writers import write_pdf  # noqa: E402

SENTENCES = [
    "햇살동 주민센터는 건물 안전 점검을 위해 {n}월 목요일 하루 동안 모든 민원 업무를 쉽니다.",
    "급한 서류는 가까운 달빛동 주민센터에서 발급받을 수 있으며 신분증을 꼭 가져와야 합니다.",
    "물빛천 하류의 배수구 근처에서는 총인 농도가 기준을 넘어 침전 시설을 설치하기로 했다.",
    "새 도서관에는 노트북을 쓸 수 있는 열람석 {n}개와 유아 전용 놀이 공간이 생깁니다.",
    "입주자대표회의는 승강기 두 대를 장기수선충당금으로 내년 봄에 교체하기로 의결했다.",
]


def pages_text(pages: int) -> list[list[str]]:
    return [[sentence.format(n=page) for sentence in SENTENCES] * 3 for page in range(1, pages + 1)]


def with_pypdfium2(path: Path) -> list[str]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        texts = []
        for page in pdf:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        pdf.close()


def with_pypdf(path: Path) -> list[str]:
    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(str(path)).pages]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    content = pages_text(args.pages)
    wanted = [squeeze(sentence) for page in content for sentence in page]
    with tempfile.TemporaryDirectory() as folder:
        path = write_pdf(Path(folder) / "bench.pdf", content)
        results = {}
        for name, extract in (("pypdfium2", with_pypdfium2), ("pypdf", with_pypdf)):
            extract(path)  # warm-up: imports, font tables
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                texts = extract(path)
                times.append(time.perf_counter() - started)
            joined = squeeze("".join(texts))
            found = sum(sentence in joined for sentence in wanted)
            results[name] = (min(times), found)
            print(f"{name:10s} {min(times) / args.pages * 1000:8.2f} ms/page (best of {args.rounds}), "
                  f"{found}/{len(wanted)} sentences recovered")
    ratio = results["pypdf"][0] / results["pypdfium2"][0]
    print(f"pypdf takes {ratio:.1f}x the time of pypdfium2 on {args.pages} pages")


if __name__ == "__main__":
    main()
