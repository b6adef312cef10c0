"""The import lines of STYLE.md that keep the front ends thin, checked on the source.

``cli/`` and ``serve/`` import only the facade (``kosearch``, ``kosearch.index`` and the shared
result and error types it returns), the train/evaluate entry points and their own printing or HTTP
modules: no store, search, encoder, documents or data module. A front end that reached into those
would hold logic of its own that the Python API and the other front end do not share.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kosearch"

FACADE = {"kosearch", "kosearch.index", "kosearch.errors", "kosearch.results", "kosearch._version", "kosearch.notices"}
"""The facade and what it hands back: the ``Index``, its results and errors, the version, the one-time
notices the library logs for a front end to show."""
ENTRY_POINTS = {"kosearch.evaluate", "kosearch.train", "kosearch.train.config"}
"""Evaluation and training entry points (``train.config`` is the training options dataclass that the
``kosearch train`` options are derived from)."""
LAUNCHES = {"kosearch.cli": {"kosearch.serve"}}
"""``kosearch serve`` is a CLI command: it builds the service's app (through the package's public names)."""


def kosearch_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute ``kosearch...`` module a file imports, at any depth (functions, TYPE_CHECKING blocks)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, module) for line, module in found if module == "kosearch" or module.startswith("kosearch.")]


def front_end_files() -> list[Path]:
    return sorted([*(PACKAGE / "cli").rglob("*.py"), *(PACKAGE / "serve").rglob("*.py")])


@pytest.mark.parametrize("path", front_end_files(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_front_ends_import_only_the_facade_and_entry_points(path: Path):
    own = "kosearch." + path.relative_to(PACKAGE).parts[0]
    crossing = [
        f"{path.relative_to(PACKAGE)}:{line}: {module}"
        for line, module in kosearch_imports(path)
        if module not in FACADE | ENTRY_POINTS | LAUNCHES.get(own, set()) and module != own and not module.startswith(own + ".")
    ]
    assert not crossing, "front end reaches past the facade:\n" + "\n".join(crossing)


def test_the_check_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from kosearch.store.index_store import IndexStore\nimport os\n", encoding="utf-8")
    assert kosearch_imports(sample) == [(2, "kosearch.store.index_store")]


def test_nothing_imports_the_front_ends():
    users = [
        f"{path.relative_to(PACKAGE)}:{line}: {module}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "serve", "__main__.py")
        for line, module in kosearch_imports(path)
        if module.startswith(("kosearch.cli", "kosearch.serve"))
    ]
    assert not users, "\n".join(users)
