"""``vertebra-review bench``: the benchmarks of :mod:`core.benchmarks`, and ``bench gui`` of :mod:`desktop.benchmark`,
which measures the desktop app (imported only for it)."""

from __future__ import annotations

import argparse

from core.benchmarks import BENCHMARKS
from desktop.cli.arguments import anatomy_source, whole
from desktop.cli.output import EXIT_OK, say, say_json


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "gui":
        from desktop.benchmark import bench_gui

        result = bench_gui(repeats=args.repeats, size=args.size)
    else:
        from core.benchmarks import run_benchmark

        anatomy = [(source.labels, source.scheme) for source in args.anatomy] if args.anatomy else None
        result = run_benchmark(args.what, repeats=args.repeats, device=args.device, preset=args.preset,
                               size=args.size, anatomy=anatomy)
    if args.json:
        say_json(result, indent=None)
    else:
        for line in result.get("lines", []):
            say(line)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``bench``."""
    bench = commands.add_parser("bench", help="run a benchmark and print the figures")
    bench.add_argument(
        "what",
        choices=[*BENCHMARKS, "gui"],
        help="io: DICOM reading, windowing and sagittal reformat; synth: phantom slices per second; "
        "detect: detector latency, FLOPs and the share of the matmul peak; diagnose: a whole slice through "
        "detection, extraction and classification; train: training images/s of the detector and patches/s "
        "of the classifier, with the time spent waiting for data; gui: slice switch, box drag, study open and GUI "
        "blocking, offscreen",
    )
    bench.add_argument("--preset", choices=["paper", "fast"], default="paper",
                       help="diagnose and train: the paper's model sizes, or the CPU preset's (fast)")
    bench.add_argument("--repeats", type=whole(1, 1000), default=5)
    bench.add_argument("--size", choices=["full", "smoke"], default="full",
                       help="full: the figures the README gives; smoke: the smallest run that goes through every "
                       "stage (tiny images, a few steps), as the test suite runs it")
    bench.add_argument("--device", default="cpu", help="detect: cpu, cuda, or all (the CPU and CUDA when present); "
                       "diagnose and train: cpu or cuda")
    bench.add_argument("--anatomy", type=anatomy_source, nargs="+", metavar="LABELS[:SCHEME]",
                       help="synth: label maps to time the anatomy source on (default: the bundled ones)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=cmd_bench)
