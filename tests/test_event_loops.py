"""Invariant 5: only service/cli.py owns an event loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"run", "new_event_loop", "run_until_complete", "get_event_loop"}


def loop_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = node.func.attr
            is_asyncio_run = name == "run" and isinstance(owner, ast.Name) and owner.id == "asyncio"
            if is_asyncio_run or name in FORBIDDEN - {"run"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def test_no_event_loop_outside_cli() -> None:
    offenders = []
    for package in ("service", "executors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.relative_to(ROOT).as_posix() == "service/cli.py":
                continue
            offenders += loop_calls(path)
    assert offenders == []


def test_the_check_sees_a_loop_call(tmp_path: Path) -> None:
    sample = ROOT / "service" / "cli.py"
    assert any("run" in call for call in loop_calls(sample))
