"""Imaging benchmark (not collected by pytest): ``uv run python tests/benchmarks/bench_imaging.py [--repeats N]``.

The same figures as ``vertebra-review bench io``: reading and windowing one 512x512 DICOM slice, and loading a
300-slice series folder and reformatting it to sagittal, as medians of several runs.
"""

from __future__ import annotations

import argparse
import json

from core.benchmarks.imaging import bench_io

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench_io(repeats=args.repeats)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "lines"}))
    else:
        print("\n".join(result["lines"]))
