"""Phantom benchmark (not collected by pytest): ``uv run python tests/benchmarks/bench_synth.py [--repeats N]``.

The same figures as ``vertebra-review bench synth``: slices per second written by ``synth``, in one process and in
one process per core, and the rendering rate alone.
"""

from __future__ import annotations

import argparse
import json

from core.benchmarks.synth import bench_synth

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench_synth(repeats=args.repeats)
    print(json.dumps({k: v for k, v in result.items() if k != "lines"}) if args.json else "\n".join(result["lines"]))
