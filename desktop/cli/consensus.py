"""Consensus commands (issue 7): ``consensus STUDY --report DIR [--propose]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.annotations.geometry import HIT_IOM
from desktop.cli.arguments import whole
from desktop.cli.output import EXIT_OK, EXIT_PARTIAL, drive, say, warn


def _reader_list(text: str) -> list[str]:
    readers = [r.strip() for r in text.split(",") if r.strip()]
    if not readers:
        raise argparse.ArgumentTypeError("give reader ids separated by commas, for example r1,r2,r3")
    return readers


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be from 0 to below 1")
    return value


def _kappa_line(stats: dict, name: str = "fleiss_kappa", title: str = "Fleiss' kappa") -> str:
    parts = []
    for code, kappa in stats[name].items():
        interval = stats[f"{name}_ci95"][code]
        text = "undefined" if kappa is None else f"{kappa:.2f}"
        if interval:
            text += f" ({interval[0]:.2f} to {interval[1]:.2f})"
        parts.append(f"{code} {text}")
    return f"{title}: " + ", ".join(parts)


def _warn_problems(check) -> None:
    for reader, case, slice_id in check.missing:
        warn(f"warning: {reader} has no annotation for {case}/{slice_id}: the consensus of this slice is partial")
    for path, why in check.skipped:
        warn(f"skipped {path}: {why}")
    if check.unread:
        shown = ", ".join(f"{c}/{s}" for c, s in check.unread[:5]) + (", …" if len(check.unread) > 5 else "")
        warn(f"note: {len(check.unread)} slices have no annotation by any of the readers ({shown})")


def _notes(check) -> list[str]:
    notes = []
    if check.blinding and check.not_done:
        cases = sorted({case for _, case in check.not_done})
        notes.append(f"Blinding is on and {len(cases)} cases are not yet marked done by every reader: keep this "
                     "report from the readers until they are.")
    return notes


def _propose_lines(proposal) -> None:
    kept = f" ({proposal.unchanged} proposed earlier are unchanged)" if proposal.unchanged else ""
    say(f"proposed: {proposal.proposed} vertebrae on {len(proposal.written)} slices written to consensus/{kept}; "
        f"{len(proposal.conflicts)} vertebrae without a majority left for the readers to decide")
    if proposal.skipped:
        by_reason: dict[str, list[str]] = {}
        for (case, slice_id), why in proposal.skipped:
            by_reason.setdefault(why, []).append(f"{case}/{slice_id}")
        for why, slices in by_reason.items():
            shown = ", ".join(slices[:8]) + (", …" if len(slices) > 8 else "")
            say(f"skipped {len(slices)} slices whose consensus is {why}: {shown}")


def cmd_consensus(args: argparse.Namespace) -> int:
    from core.consensus.agreement import agreement_statistics
    from core.consensus.check import check_study, study_readers
    from core.consensus.counts import DisagreementCounts
    from core.consensus.matching import MatchSettings
    from core.consensus.reading import progress_by_reader, reading_progress
    from core.consensus.report import write_report
    from core.consensus.session import ConsensusSession
    from core.errors import ConsensusError
    from core.study.layout import Study

    study = Study.open(args.study)
    settings = MatchSettings(args.match, args.threshold, args.box_tolerance)
    check = drive(check_study(study, args.readers, settings))
    if not args.readers and study_readers(study).note():
        warn(f"note: {study_readers(study).note()} Name them with --readers to compare them.")
    _warn_problems(check)
    if not check.slices:
        raise ConsensusError(f"none of the readers {', '.join(check.readers)} has annotated a slice", study.root)
    stats = agreement_statistics(check, bootstrap=args.bootstrap, seed=args.seed)
    stats["reading_progress"] = progress_by_reader(reading_progress(study, check.readers))
    session = ConsensusSession(study, check)
    proposal = session.propose() if args.propose else None
    files = write_report(args.report, check, stats, decisions=session.decision_labels(), notes=_notes(check),
                         title=f"Reader consistency check: {study.settings.name}")
    counts = stats["vertebrae"]
    say(f"compared {len(check.slices)} slices of {stats['cases']} cases, readers {', '.join(check.readers)} "
        f"({settings.describe()})")
    say(f"vertebrae: {counts['groups']} matched groups; unanimous {counts['unanimous']}, majority "
        f"{counts['majority']}, conflict {counts['conflict']}, missing for some reader {counts['missing']}; "
        f"boxes drawn differently {counts['boxes_differ']}")
    disagreements = DisagreementCounts(**stats["disagreements"])
    say(f"disagreements: {disagreements.open} open of {disagreements.total} ({disagreements.decided} decided, "
        f"{disagreements.locked} on slices whose consensus is final or made outside this workflow)")
    fleiss_units = stats["fleiss_kappa_detail"]["NORMAL"]["subjects"]
    say(_kappa_line(stats) + f" (over the {fleiss_units} vertebrae every reader drew)")
    alpha_units = stats["krippendorff_alpha_detail"]["NORMAL"]["units"]
    say(_kappa_line(stats, "krippendorff_alpha", "Krippendorff's alpha")
        + f" (over the {alpha_units} vertebrae two or more readers drew)")
    boxes = stats["box_agreement"]
    rate = boxes["detection_agreement_rate"]
    say(f"box agreement: mean IoU {boxes['mean_iou'] if boxes['mean_iou'] is not None else '–'}; "
        f"detection agreement {'–' if rate is None else f'{rate:.1%}'}")
    if proposal is not None:
        _propose_lines(proposal)
    for note in _notes(check):
        warn(f"note: {note}")
    say(f"report: {files.html} (also disagreements.csv, inconsistencies.csv, agreement.json)")
    return EXIT_PARTIAL if check.partial else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``consensus``."""
    parser = commands.add_parser(
        "consensus",
        help="compare the readers: disagreements, agreement statistics (kappa) and majority proposals",
        description="Match the readers' boxes slice by slice, list every disagreement, compute Fleiss' and Cohen's "
        "kappa, box agreement and each reader against the consensus, and write the report. With --propose, write "
        "the majority call of each undecided vertebra to consensus/ (never over a finalised consensus).",
    )
    parser.add_argument("study", type=Path)
    parser.add_argument("--readers", type=_reader_list,
                        help="reader ids, comma-separated (default: the readers study.json names, else every reader "
                             "with a folder)")
    parser.add_argument("--report", type=Path, required=True,
                        help="folder for disagreements.csv, inconsistencies.csv, agreement.json and report.html")
    parser.add_argument("--propose", action="store_true",
                        help="write majority proposals to consensus/ for slices not finalised")
    parser.add_argument("--match", choices=["iom", "iou"], default="iom",
                        help="box overlap measure for matching (default iom, the paper's hit rule)")
    parser.add_argument("--threshold", type=_fraction, default=HIT_IOM,
                        help=f"boxes match above this (default {HIT_IOM}, the paper's hit rule)")
    parser.add_argument("--box-tolerance", type=_fraction, default=0.6,
                        help="matched boxes with an IoU below this are flagged as drawn differently (default 0.6)")
    parser.add_argument("--bootstrap", type=whole(0, 100_000), default=1000,
                        help="bootstrap samples for the 95%% intervals of the kappas and alpha (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.set_defaults(func=cmd_consensus)
