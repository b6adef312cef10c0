"""HTTP inputs fuzzed from the service's own OpenAPI schema (schemathesis): no request may get a 500.

Schemathesis generates valid and invalid requests for every operation in /openapi.json (query
strings, bodies, path parameters of every type and size) and checks each response; a server error
or a response that breaks its schema fails the test with the request that caused it.

``KOSEARCH_FUZZ_SCALE`` multiplies the examples per operation (as for the document fuzzing), and
``KOSEARCH_SERVE_FUZZ_REPORT=counts.json`` writes how many requests each operation got and the status
codes they were answered with, for docs/benchmarks.md.
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
from hypothesis import HealthCheck, settings  # noqa: E402

from kosearch import Index  # noqa: E402
from kosearch.serve import create_app  # noqa: E402
from kosearch_testing import HashingEncoder  # noqa: E402


def _app(folder: Path):
    docs = folder / "docs"
    docs.mkdir(parents=True)
    (docs / "a.txt").write_text("도서관은 오전 아홉 시에 문을 엽니다.\n주차장은 지하 2층에 있습니다.\n", encoding="utf-8")
    (docs / "b.csv").write_text("text,rating\n영화가 정말 재미있었다,9\n지루한 영화였다,2\n", encoding="utf-8")
    with Index.open_or_create(folder / "index", HashingEncoder()) as idx:
        idx.add_folder(docs)
    return create_app(folder / "index", model=HashingEncoder(), allow_writes=True, token="fuzz-token", warm_up=False)


def _schema():
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="kosearch-fuzz-"))
    return schemathesis.openapi.from_asgi("/openapi.json", _app(folder))


schema = _schema()
FUZZ_SCALE = max(1, int(os.environ.get("KOSEARCH_FUZZ_SCALE", "1")))
CASES: collections.Counter[tuple[str, int]] = collections.Counter()
"""(operation, status code) -> requests sent."""


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    target = os.environ.get("KOSEARCH_SERVE_FUZZ_REPORT")
    if target:
        per_operation: dict[str, dict[str, int]] = {}
        for (operation, status), count in sorted(CASES.items()):
            per_operation.setdefault(operation, {})[str(status)] = count
        statuses = collections.Counter()
        for (_, status), count in CASES.items():
            statuses[str(status)] += count
        report = {"scale": FUZZ_SCALE, "requests": sum(CASES.values()), "status_codes": dict(sorted(statuses.items())), "per_operation": per_operation}
        Path(target).write_text(json.dumps(report, indent=1) + "\n")


@schema.parametrize()
@settings(max_examples=25 * FUZZ_SCALE, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case):
    case.headers = {**(case.headers or {}), "Authorization": "Bearer fuzz-token"}
    response = case.call()
    CASES[(f"{case.method} {case.path}", response.status_code)] += 1
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
