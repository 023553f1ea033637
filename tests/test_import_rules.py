"""Layering rules, checked on the source: storage knows no probes or UI; computation knows no storage or UI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI_MODULES = {ROOT / "probes" / "__main__.py", *(ROOT / "probes" / "cli").glob("*.py")}
WIRING = ROOT / "probes" / "wiring.py"  # the one layer that joins probes to the store
WIRING_LAYER = {WIRING, ROOT / "probes" / "executors.py", ROOT / "probes" / "jobs.py"}  # wiring, executors, jobs
STORE_WRITES = {"put", "get_or_compute"}  # ResultStore methods that store a computed run


def imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", python_files("cache"), ids=lambda p: str(p.relative_to(ROOT)))
def test_cache_imports_neither_streamlit_nor_probes(path: Path) -> None:
    assert not imported_top_packages(path) & {"streamlit", "probes", "pages"}


@pytest.mark.parametrize(
    "path",
    [p for p in python_files("probes") if p not in CLI_MODULES | WIRING_LAYER],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_probe_computation_imports_neither_streamlit_nor_cache(path: Path) -> None:
    assert not imported_top_packages(path) & {"streamlit", "cache", "pages"}


@pytest.mark.parametrize("path", sorted(CLI_MODULES | WIRING_LAYER), ids=lambda p: str(p.relative_to(ROOT)))
def test_cli_and_wiring_never_import_streamlit_or_pages(path: Path) -> None:
    assert not imported_top_packages(path) & {"streamlit", "pages"}


def run_and_store_calls(path: Path) -> list[str]:
    """Calls that build a run key or store a computed run: `RunKey.build(...)`, `<store>.put(...)`, ...`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in STORE_WRITES or (node.func.attr == "build" and getattr(owner, "id", "") == "RunKey"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}")
    return found


def test_only_the_wiring_layer_keys_and_stores_runs() -> None:
    """Pages and the CLI run probes through probes/wiring.py; none of them keys or stores a run itself."""
    callers = [path for folder in ("pages", "probes") for path in python_files(folder) if path != WIRING]
    offenders = [call for path in [*callers, ROOT / "app.py"] for call in run_and_store_calls(path)]
    assert offenders == []
    assert run_and_store_calls(WIRING)  # the rule would see a violation (the layer itself does both)


def test_streamlit_only_in_app_and_pages() -> None:
    allowed = {ROOT / "app.py", *python_files("pages")}
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("probes", "cache", "bench")
        for path in python_files(folder)
        if path not in allowed and "streamlit" in imported_top_packages(path)
    ]
    assert offenders == []


def test_the_rule_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit as st\nfrom cache.store import ResultStore\n")
    assert imported_top_packages(bad) == {"streamlit", "cache"}
