"""The house's size rule: no module of the package over 400 lines, and each opens with a
docstring saying its one job (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

NF = Path(__file__).resolve().parents[2] / "nf"
MAX_LINES = 400


def _modules() -> list[Path]:
    return sorted(NF.rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(NF.parent)): n for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by job: {long}"


def test_every_module_opens_with_a_docstring() -> None:
    missing = [str(p.relative_to(NF.parent)) for p in _modules()
               if p.stat().st_size and ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == [], f"say the module's one job in an opening docstring: {missing}"
