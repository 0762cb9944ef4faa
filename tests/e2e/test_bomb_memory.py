"""The hostile-file memory benchmark (``tests/benchmarks/bomb_memory.py``) at its smallest: one kind of bomb."""

from __future__ import annotations

import re

from tests.benchmarks.bomb_memory import main


def test_the_bomb_memory_table_has_a_refusal_and_a_peak_for_each_kind_asked():
    lines = main(["frames", "flat"])
    assert re.fullmatch(r"baseline \(--version\): \d+ MiB peak resident", lines[0])
    rows = lines[3:]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "1", row  # refused: exit 1
        assert re.fullmatch(r"\d+ MiB", cells[3]) and int(cells[3].split()[0]) < 1024, row
        assert cells[4].startswith("vertebra-review: error: ") and "Traceback" not in row
    assert "the limit is 10000 frames" in rows[0] and "no sagittal image" in rows[1]
