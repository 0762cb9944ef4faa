"""``vertebra-review demo build``: make the bundled demo study with its demo models."""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop.cli.arguments import anatomy_source
from desktop.cli.output import EXIT_ERROR, EXIT_OK, drive, say, warn


def cmd_demo_build(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        warn(f"vertebra-review: error: {args.out}: the demo is written into a new folder, and this is a file")
        return EXIT_ERROR
    from core.models.package import read_manifest

    for package, kind in ((args.detector, "detector"), (args.classifier, "classifier")):
        if package is not None:
            read_manifest(package, kind=kind)  # a missing or swapped package is named now, not after the synthesis
    from core.synthetic.demo import build_demo

    report = drive(build_demo(args.out, detector=args.detector, classifier=args.classifier,
                              anatomy=tuple(args.anatomy or ())))
    say(f"demo study: {report.study} ({report.slices} slices diagnosed by {report.model_id}, models "
        f"{report.model_megabytes:.1f} MB)")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the bundled demo study and models").add_subparsers(
        dest="demo_action", metavar="ACTION")
    build = demo.add_parser("build", help="make the demo study with demo models (trains them unless given)")
    build.add_argument("out", type=Path, help="a new folder, for example resources/demo")
    build.add_argument("--detector", type=Path, help="a detector package trained by the demo recipe")
    build.add_argument("--classifier", type=Path, help="a classifier package trained by the demo recipe")
    build.add_argument("--anatomy", type=anatomy_source, nargs="+", metavar="LABELS[:SCHEME]",
                       help="label maps for the anatomy stages: fine-tune both models on phantoms from real anatomy "
                       "(the recipe's maps and their order are in core/synthetic/demo.py)")
    build.set_defaults(func=cmd_demo_build)
