"""The import lines of STYLE.md ("Lines the imports must never cross"), checked mechanically.

Every ``import`` / ``from ... import`` in a package's files is read with ``ast`` (also the ones
inside functions and under ``TYPE_CHECKING``: a lazy import crosses the line just the same), and
each ``kosearch`` module it names must be one the package may use:

- ``store/`` imports nothing above it: only itself and the shared modules (errors, result and
  record types, version), which in turn import only each other;
- ``documents/`` imports no encoder, store or search module; ``encoders/`` no store or documents;
- ``cli/`` and ``serve/`` import only the facade (``kosearch``, ``kosearch.index``, its result and
  error types), the train/evaluate entry points and printing; nothing else imports them;
- ``train/`` and ``evaluate/`` never reach into the store.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kosearch"

SHARED = {
    "kosearch.errors", "kosearch.results", "kosearch.types", "kosearch._version", "kosearch.textclean", "kosearch.memory",
    "kosearch.ranking",
}
"""Modules every layer may use: they import nothing but each other."""

ALLOWED: dict[str, tuple[str, ...]] = {
    "store": ("kosearch.store", *SHARED),
    "documents": ("kosearch.documents", *SHARED),
    "encoders": ("kosearch.encoders", *SHARED),
    "cli": (
        "kosearch.cli", "kosearch.serve", "kosearch.index", "kosearch.notices", "kosearch.train",
        "kosearch.evaluate", *SHARED,
    ),
    "serve": ("kosearch.serve", "kosearch.index", "kosearch.notices", *SHARED),
}
"""Per package: the module prefixes its imports may name (plus the bare facade ``kosearch``)."""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "train": ("kosearch.store",),
    "evaluate": ("kosearch.store",),
}


def kosearch_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every kosearch module (or ``from kosearch import name``) a file imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                base = ".".join(parts + ((node.module,) if node.module else ()))
            else:
                base = node.module or ""
            if base == "kosearch":
                # ``from kosearch import store`` names a module; ``from kosearch import Index`` the facade.
                found.extend(
                    (node.lineno, f"kosearch.{alias.name}" if (PACKAGE / alias.name).exists()
                     or (PACKAGE / f"{alias.name}.py").exists() else "kosearch")
                    for alias in node.names
                )
            else:
                found.append((node.lineno, base))
    return sorted((line, name) for line, name in found if name == "kosearch" or name.startswith("kosearch."))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _files(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_its_layer_may(package):
    crossings = []
    for path in _files(package):
        for line, name in kosearch_imports(path):
            facade = name == "kosearch" and package in ("cli", "serve")
            if not facade and not _within(name, ALLOWED[package]):
                crossings.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert crossings == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_train_and_evaluate_never_reach_into_the_store(package):
    crossings = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in _files(package)
        for line, name in kosearch_imports(path)
        if _within(name, FORBIDDEN[package])
    ]
    assert crossings == []


def test_the_shared_modules_import_only_each_other():
    crossings = [
        f"{module}:{line} imports {name}"
        for module in sorted(SHARED)
        for line, name in kosearch_imports(PACKAGE / f"{module.split('.', 1)[1]}.py")
        if name not in SHARED
    ]
    assert crossings == []


def test_nothing_imports_the_front_ends():
    front_ends = ("kosearch.cli", "kosearch.serve")
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        inside = path.relative_to(PACKAGE).parts[0] in ("cli", "serve", "__main__.py")
        for line, name in kosearch_imports(path):
            if not inside and _within(name, front_ends):
                crossings.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert crossings == []


def test_the_checker_sees_a_crossing(tmp_path, monkeypatch):
    """The checker itself: a lazy import inside a function, and a relative one, are both found."""
    fake = tmp_path / "kosearch"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "bad.py").write_text(
        "def f():\n    from kosearch.documents import types\n\nfrom ..search import hybrid\nimport numpy\n"
    )
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert kosearch_imports(fake / "store" / "bad.py") == [(2, "kosearch.documents"), (4, "kosearch.search")]


STORE_INTERNALS = {"metadata", "vectors", "_writer", "_segments", "_view", "_pending", "_tombstones", "_probe"}
"""What an ``IndexStore`` keeps inside; code above the store asks its methods instead (issue 7 part 6)."""
STORE_USERS = ["ingest.py", "records.py", "paraphrases.py", "index.py", "search"]


def test_code_above_the_store_uses_its_methods_not_its_internals():
    reaches = []
    for name in STORE_USERS:
        paths = sorted((PACKAGE / name).rglob("*.py")) if (PACKAGE / name).is_dir() else [PACKAGE / name]
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and node.attr in STORE_INTERNALS:
                    reaches.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} .{node.attr}")
    assert reaches == []
