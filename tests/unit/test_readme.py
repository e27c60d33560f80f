"""The README is part of the product: its tour runs, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_library_tour_runs() -> None:
    (snippet,) = re.findall(r"## Library tour.*?```python\n(.*?)```", README, re.S)
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})


def test_ci_runs_the_readme_test_command() -> None:
    (command,) = re.findall(r"^## Test\n(?:.*\n)*?    (.+)$", README, re.M)
    assert command in (ROOT / ".ci" / "run").read_text()
