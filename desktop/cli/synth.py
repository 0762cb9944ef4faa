"""``vertebra-review synth``: a synthetic phantom study, drawn or from real anatomy."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from desktop.cli.arguments import anatomy_source, number, prevalence, whole
from desktop.cli.output import EXIT_OK, drive, say, warn


def cmd_synth(args: argparse.Namespace) -> int:
    if args.anatomy:
        return _synth_anatomy(args)
    from core.synthetic.generate import SynthOptions, generate_study

    options = SynthOptions(
        cases=args.cases,
        seed=args.seed,
        readers=args.readers,
        site=args.site,
        slices_per_case=args.slices,
        prevalence=args.prevalence or prevalence(""),
        disagreement=args.disagreement,
        preview=args.preview,
    )
    workers = args.workers or os.cpu_count() or 1
    report = drive(generate_study(args.out, options, workers=workers))
    for note in report.notes:
        warn(note)
    rates = ", ".join(f"{code} {rate:.1%}" for code, rate in report.prevalence.items())
    say(f"wrote {report.cases} cases, {report.slices} slices, {report.boxes} vertebra boxes to {report.study}")
    say(f"prevalence per box: {rates}")
    if options.readers > 1:
        say(f"readers disagree on {report.disagreement:.1%} of boxes (asked for {options.disagreement:.1%})")
    say(f"{report.slices / report.seconds:.1f} slices/s")
    if report.preview:
        say(f"preview: {report.preview}")
    return EXIT_OK


def _synth_anatomy(args: argparse.Namespace) -> int:
    from core.synthetic.anatomy_study import AnatomyOptions, generate_anatomy_study

    options = AnatomyOptions(tuple(args.anatomy), cases=args.cases, seed=args.seed, slices_per_case=args.slices,
                             prevalence=args.prevalence or prevalence(""), preview=args.preview)
    report = drive(generate_anatomy_study(args.out, options, workers=args.workers or os.cpu_count() or 1))
    for note in report.notes:
        warn(note)
    say(f"wrote {report.cases} cases, {report.slices} slices, {report.boxes} vertebra boxes to {report.study} "
          f"(from real anatomy: {len(options.sources)} label maps)")
    say("diseased boxes: " + ", ".join(f"{code} {n}" for code, n in report.diseases.items()))
    say(f"{report.slices / report.seconds:.1f} slices/s")
    if report.preview:
        say(f"preview: {report.preview}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``synth``."""
    synth = commands.add_parser("synth", help="write a synthetic phantom study (truth, three readers, DICOM + PNG)")
    synth.add_argument("out", type=Path, help="a new folder for the study")
    synth.add_argument("--cases", type=whole(1, 100_000), default=10, help="cases (default 10)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--readers", type=whole(0, 9), default=3, help="simulated readers, 0-9 (default 3)")
    synth.add_argument("--site", choices=["A", "B"], default="A", help="scanner: A (default) or B (external)")
    synth.add_argument("--slices", type=whole(1, 500), default=10, help="sagittal slices per case (default 10)")
    synth.add_argument(
        "--prevalence",
        type=prevalence,
        default=None,  # the paper's rates, filled in by the command: every command would load them otherwise
        help="per-box disease rates, for example OVCF=0.2,SN=0.05 (default: the paper's Table 2)",
    )
    synth.add_argument(
        "--disagreement",
        type=number(0, 0.89),
        default=0.08,
        help="share of boxes on which the readers are not unanimous, 0-0.89 (default 0.08)",
    )
    synth.add_argument("--preview", action="store_true", help="also write preview.png, a montage with the truth")
    synth.add_argument("--workers", type=whole(0, 256), default=0,
                       help="processes to render with (default 0: one per CPU)")
    synth.add_argument("--anatomy", type=anatomy_source, nargs="+", metavar="LABELS[:SCHEME]",
                       help="draw the cases from these real label maps (the second phantom source: deformed real "
                            "anatomy with a random appearance; no readers, the truth in the consensus)")
    synth.set_defaults(func=cmd_synth)
