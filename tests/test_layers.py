"""The layers only import downward: keywords and data_catalog (bottom) <- models <- tasks <- flows (top).

Every import in every module counts, function-local and ``TYPE_CHECKING`` ones included: a lazy upward
import is still a cycle, only hidden. Loading the config must not need Prefect (the cron check is pure
Python), so a config with re-crawl schedules loads in a process that has never imported it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"keywords": 0, "data_catalog": 0, "models": 1, "tasks": 2, "flows": 3}


def imported_modules(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``tree``; ``package`` resolves relative ones."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def upward_imports(root: Path) -> list[tuple[str, int, str]]:
    """(file, line, module) of every import of a higher layer than the importing file's."""
    problems = []
    for top, rank in LAYERS.items():
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            package = ".".join(rel.with_suffix("").parts[:-1])
            for line, module in imported_modules(ast.parse(path.read_text(), str(rel)), package):
                if LAYERS.get(module.split(".")[0], -1) > rank:
                    problems.append((rel.as_posix(), line, module))
    return problems


def test_no_module_imports_a_higher_layer_not_even_lazily():
    found = [f"{f}:{n} imports {m}" for f, n, m in upward_imports(ROOT)]
    assert not found, "upward imports:\n" + "\n".join(found)


def test_the_walk_sees_lazy_relative_and_type_checking_imports(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "low.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from tasks.stage import Config
            def build():
                import flows.config
            from ..flows import cli
            from data_catalog import io
            """
        )
    )
    found = upward_imports(tmp_path)
    assert sorted((n, m) for _, n, m in found) == [(4, "tasks.stage"), (6, "flows.config"), (7, "flows")]


@pytest.mark.slow
def test_loading_a_config_with_cron_schedules_imports_no_prefect(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from flows.config import load_config
        cfg = load_config(overrides=["service.recrawl={Argue: '0 3 * * mon-fri'}"])
        assert cfg.service.recrawl, cfg.service
        print(sorted(m for m in sys.modules if m.split(".")[0] == "prefect"))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
