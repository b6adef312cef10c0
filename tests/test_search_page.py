"""The search page in a real browser: headless Chromium (Debian's package) driven by Playwright.

It types a Korean query into the page served by a real ``kosearch serve`` process over the sample
corpus (real bundled encoder) and checks what the page shows: ranked hits, the query's morphemes
highlighted, the file and page, neighbouring sentences on demand, and the paraphrase view. Skipped,
with the reason, where Playwright or a Chromium binary is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from test_serve import start_server

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

CHROMIUM = os.environ.get("KOSEARCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium binary (apt-get install chromium, or set KOSEARCH_CHROMIUM)"
)


@pytest.fixture(scope="module")
def served(sample_index):
    process, url = start_server(sample_index)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def page(served):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        page.goto(served)
        yield page
        browser.close()


def test_typing_a_korean_query_shows_ranked_highlighted_hits(page):
    page.fill("#query", "주차장 이용 시간")
    page.press("#query", "Enter")
    page.wait_for_selector("#results li")
    hits = page.locator("#results li")
    assert hits.count() == 10
    first = hits.nth(0)
    assert "주차장" in first.locator(".hit-text").inner_text()
    assert "주차장" in [mark.inner_text() for mark in first.locator("mark").all()]
    assert ":" in first.locator(".where").inner_text() or " p." in first.locator(".where").inner_text()
    assert "결과 10개" in page.inner_text("#status")


def test_a_pdf_hit_shows_its_page_and_neighbours_on_demand(page):
    page.fill("#query", "새 도서관은 어디에 있나요?")
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('결과')")
    places = page.locator("#results .where").all_inner_texts()
    assert any(".pdf p." in place for place in places)
    first = page.locator("#results li").nth(0)
    first.locator("button.more").click()
    first.locator(".context").wait_for()
    assert first.locator(".context p").count() >= 2


def test_filters_narrow_the_results(page):
    page.click("#options summary")
    page.select_option("#format", "pdf")
    page.fill("#query", "안내")
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('결과')")
    places = page.locator("#results .where").all_inner_texts()
    assert places and all(".pdf" in place for place in places)
    page.select_option("#format", "")


def test_paraphrase_view_lists_pairs(page):
    page.click("#tab-pairs")
    page.click("#load-pairs")
    page.wait_for_selector("#pairs li .scores")
    assert page.locator("#pairs li").count() == 20
    assert "유사도" in page.locator("#pairs li .scores").nth(0).inner_text()
    page.click("#tab-search")


def test_a_bad_filter_is_shown_as_an_error_not_a_crash(page):
    page.fill("#path", "'")  # quotes are escaped: this is a literal path pattern, never SQL
    page.fill("#query", "안내")
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.length > 0 && !document.querySelector('#status').textContent.startsWith('검색 중')")
    assert page.inner_text("#status") in ("찾은 결과가 없습니다.",) or page.locator("#status.error").count() == 1
    page.fill("#path", "")


def test_screenshot_of_a_korean_search(page, tmp_path):
    """The README's screenshot: ``KOSEARCH_SCREENSHOT=docs/search-page.png`` saves it there (else to a temporary file)."""
    target = Path(os.environ.get("KOSEARCH_SCREENSHOT") or tmp_path / "search-page.png")
    page.fill("#query", "도서관 열람실 이용 시간")
    page.press("#query", "Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('결과')")
    page.locator("#results li").nth(0).locator("button.more").click()
    page.locator("#results li").nth(0).locator(".context").wait_for()
    assert page.locator("#results li mark").count() > 0  # the picture shows highlighted morphemes
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=False)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
