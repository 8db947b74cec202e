"""The layout is the architecture: layers as folders, imports one way, no cycles.

The contracts live in pyproject.toml (``[tool.importlinter]``); this runs them, and checks what
import-linter does not: no import cycle between any two modules, and no module left loose in
``streams/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_contracts_fail_when_the_core_imports_faust(tmp_path: Path) -> None:
    """A wrong arrow is caught: a copy of the tree whose core imports faust breaks a contract."""
    copy = tmp_path / "tree"
    copy.mkdir()
    for name in ("streams", "models", "bench"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(copy)], check=True)
    (copy / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    outcome = copy / "streams" / "core" / "outcome.py"
    outcome.write_text("import faust  # noqa\n" + outcome.read_text())
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0, done.stdout
    assert "streams.core.outcome -> faust" in done.stdout
    assert "BROKEN" in done.stdout


def _cycles(packages: tuple[str, ...]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    graph = grimp.build_graph(*packages)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_in_streams_or_models() -> None:
    assert _cycles(("streams", "models")) == []


@pytest.mark.parametrize("package", ["streams"])
def test_no_module_is_left_loose_at_the_top_of_a_package(package: str) -> None:
    loose = sorted(p.name for p in (ROOT / package).glob("*.py"))
    assert len(loose) <= 3, loose
    layers = sorted(p.name for p in (ROOT / package).iterdir() if (p / "__init__.py").is_file())
    for layer in layers:
        init = ROOT / package / layer / "__init__.py"
        assert init.read_text().startswith('"""'), f"{init} says what lives there"
