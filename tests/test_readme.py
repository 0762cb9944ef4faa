"""The README stays true: its test command is what CI runs, and what it shows exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _command_after(heading: str) -> str:
    match = re.search(re.escape(heading) + r"\s*```bash\n(.+?)\n```", README, re.S)
    assert match, f"no command block after {heading!r}"
    return match.group(1).strip()


def test_ci_runs_the_readme_test_command():
    command = _command_after("Run the whole test suite:")
    assert "pytest" in command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines()


def test_run_command_opens_the_app():
    command = _command_after("Run the app on the demo study:")
    assert command.endswith("vertebra-review gui --demo")


def test_images_in_the_readme_exist():
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README):
        assert (REPO / target).is_file(), target
