"""The ``vertebra-review`` command line: a thin layer over ``core``.

Every command exits 0 on success. On bad input it prints one line naming the file and the problem and exits 1
(``--debug`` shows the traceback). Partial success (some files skipped) exits 3 and lists what was skipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from core import __version__
from core.errors import VertebraReviewError
from core.progress import Progress, ProgressGenerator, run

EXIT_OK, EXIT_ERROR, EXIT_INTERNAL, EXIT_PARTIAL = 0, 1, 2, 3


class ProgressBar:
    """Progress on stderr: a one-line bar with the time left on a terminal; otherwise (a log file, CI) one line per
    tenth of each stage and one per validation, so that long runs leave a readable record."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.active = self.stream.isatty()
        self.silent = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 reports progress
        self._stage: tuple[str, int] | None = None
        self._started = time.monotonic()
        self._logged_tenth = -1

    def _eta(self, event: Progress) -> str:
        elapsed = time.monotonic() - self._started
        if event.step <= 0 or event.step >= event.total:
            return f"{elapsed:5.0f} s"
        left = elapsed / event.step * (event.total - event.step)
        return f"{left / 60:4.1f} min left" if left >= 90 else f"{left:4.0f} s left"

    def __call__(self, event: Progress) -> None:
        if not event.total or self.silent:
            return
        if self._stage != (event.stage, event.total) or event.step < 1:
            self._stage = (event.stage, event.total)
            self._started = time.monotonic()
            self._logged_tenth = -1
        if self.active:
            filled = int(self.width * event.fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{event.stage} [{bar}] {event.step}/{event.total} {self._eta(event)} "
                              f"{event.message[:48]:<48}")
            if event.step >= event.total:
                self.stream.write("\n")
        else:
            tenth = int(10 * event.fraction)
            if event.stage == "validate" or tenth > self._logged_tenth:
                self._logged_tenth = tenth
                self.stream.write(f"{event.stage} {event.step}/{event.total} {self._eta(event)} {event.message}\n")
        self.stream.flush()


def drive(job: ProgressGenerator[Any]) -> Any:
    """Run a progress generator with a progress bar on stderr; returns its result."""
    return run(job, ProgressBar())


def say(text: str = "") -> None:
    """A line of the command's result, on stdout."""
    print(text)


def warn(text: str) -> None:
    """A line about something skipped or noteworthy, on stderr."""
    print(text, file=sys.stderr)


RENDERING_HELP = ("how slices become the model's input, recorded in the package and used wherever it runs: min-max "
                  "(default, the paper's export), bone, soft, dicom or CENTER,WIDTH; images without HU are used as "
                  "they are")


def rendering_arg(text: str) -> str:
    """An argparse type: a rendering (window) spec, refused with its choices otherwise."""
    from core.imaging.rendering import check_rendering

    try:
        return check_rendering(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def check_studies(*groups: Sequence[Path] | None) -> None:
    """Open every study named (raises the first one's problem), before a command loads PyTorch to train on them."""
    from core.study.layout import Study

    for group in groups:
        for root in group or ():
            Study.open(root)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# -- commands ---------------------------------------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    from core.inspection import inspect_path

    info = inspect_path(args.path)
    _print_json(info)
    skipped = info.get("skipped") or []
    for entry in skipped:
        warn(f"skipped {entry['path']}: {entry['reason']}")
    return EXIT_PARTIAL if skipped else EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from core.study.importer import ImportOptions, import_source

    labels = None
    if args.labels is not None:
        from core.study.segmented import LabelOptions

        labels = LabelOptions(args.labels, scheme=args.label_scheme, subregions=args.subregions,
                              consensus=args.consensus, grades=args.grades, subject=args.subject,
                              fracture_as=args.fracture_as)
    elif any(v is not None for v in (args.label_scheme, args.subregions, args.grades, args.subject)) or args.consensus:
        raise VertebraReviewError("--label-scheme, --subregions, --consensus, --grades and --subject go with --labels")
    options = ImportOptions(
        labels=labels,
        reader=args.reader,
        window=args.window,
        sagittal=args.sagittal,
        count=args.count,
        step_mm=args.step_mm,
        thickness_mm=args.thickness_mm,
        key_file=args.key_file,
    )
    report = drive(import_source(args.source, args.study, options))
    for case in report.cases:
        print(f"{case.case}: {case.slices} slices, {case.annotations} annotations")
    for source, existing in report.duplicates:
        print(f"already imported as {existing}: {source}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for source, why in report.ignored:
        print(f"ignored {source}: {why}", file=sys.stderr)
    for source, why in report.skipped:
        print(f"skipped {source}: {why}", file=sys.stderr)
    print(f"imported {len(report.cases)} cases, {report.slice_count} slices into {args.study}")
    if not report.cases and not report.duplicates:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.skipped else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from core.study.exporter import export_study

    report = drive(
        export_study(
            args.study,
            args.out,
            reader=args.reader,
            model=args.model,
            window=args.window,
            embed_images=args.embed_images,
        )
    )
    for where, why in report.errors:
        print(f"skipped {where}: {why}", file=sys.stderr)
    if report.errors and not report.written:  # a failure, not a partial export
        print(f"vertebra-review: error: nothing was exported to {args.out}: all {len(report.errors)} slices failed",
              file=sys.stderr)
        return EXIT_ERROR
    print(f"exported {report.images} images and {report.annotations} annotations to {args.out}")
    return EXIT_PARTIAL if report.errors else EXIT_OK


def _prevalence(text: str) -> dict:
    from core.annotations.model import Disease
    from core.synthetic.diseases import PAPER_PREVALENCE

    rates = dict(PAPER_PREVALENCE)
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, _, value = item.partition("=")
        try:
            rates[Disease(code.strip().upper())] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: use CODE=RATE, for example OVCF=0.2,SN=0.05") from None
    return rates


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
        prevalence=args.prevalence or _prevalence(""),
        disagreement=args.disagreement,
        preview=args.preview,
    )
    workers = args.workers or os.cpu_count() or 1
    report = drive(generate_study(args.out, options, workers=workers))
    for note in report.notes:
        warn(note)
    prevalence = ", ".join(f"{code} {rate:.1%}" for code, rate in report.prevalence.items())
    print(f"wrote {report.cases} cases, {report.slices} slices, {report.boxes} vertebra boxes to {report.study}")
    print(f"prevalence per box: {prevalence}")
    if options.readers > 1:
        print(f"readers disagree on {report.disagreement:.1%} of boxes (asked for {options.disagreement:.1%})")
    print(f"{report.slices / report.seconds:.1f} slices/s")
    if report.preview:
        print(f"preview: {report.preview}")
    return EXIT_OK


def _synth_anatomy(args: argparse.Namespace) -> int:
    from core.synthetic.anatomy_study import AnatomyOptions, generate_anatomy_study

    options = AnatomyOptions(tuple(args.anatomy), cases=args.cases, seed=args.seed, slices_per_case=args.slices,
                             prevalence=args.prevalence or _prevalence(""))
    report = drive(generate_anatomy_study(args.out, options, workers=args.workers or os.cpu_count() or 1))
    for note in report.notes:
        warn(note)
    print(f"wrote {report.cases} cases, {report.slices} slices, {report.boxes} vertebra boxes to {report.study} "
          f"(from real anatomy: {len(options.sources)} label maps)")
    print("diseased boxes: " + ", ".join(f"{code} {n}" for code, n in report.diseases.items()))
    print(f"{report.slices / report.seconds:.1f} slices/s")
    return EXIT_OK


def anatomy_source(text: str):
    """``--anatomy PATH[:verse|:totalsegmentator]``."""
    from core.synthetic.anatomy_study import AnatomySource

    for scheme in ("verse", "totalsegmentator"):
        if text.endswith(f":{scheme}"):
            return AnatomySource(Path(text[: -len(scheme) - 1]), scheme)
    return AnatomySource(Path(text))


def cmd_gui(args: argparse.Namespace) -> int:
    # The desktop package is loaded by name only when asked for, so that ``core`` never imports Qt and the
    # command line works on machines without a display or without PySide6.
    try:
        app = importlib.import_module("desktop.app")
    except ImportError as exc:
        raise VertebraReviewError(f"the desktop app cannot start: {exc}") from exc
    return int(app.main(path=args.path, demo=args.demo, reader=args.reader))


def cmd_smoke_test(args: argparse.Namespace) -> int:
    # Loaded by name, as the desktop app is, so that ``core`` never imports Qt (see ``desktop/smoke.py``).
    try:
        smoke = importlib.import_module("desktop.smoke")
    except ImportError as exc:
        raise VertebraReviewError(f"smoke test failed: the desktop app cannot start: {exc}") from exc
    say(smoke.run_smoke_test(args.smoke_test or None).summary())
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from core.benchmarks import run_benchmark

    anatomy = [(source.labels, source.scheme) for source in args.anatomy] if args.anatomy else None
    result = run_benchmark(args.what, repeats=args.repeats, device=args.device, preset=args.preset, size=args.size,
                           anatomy=anatomy)
    if args.json:
        print(json.dumps(result))
    else:
        for line in result.get("lines", []):
            print(line)
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vertebra-review",
        description="Review, correct and retrain vertebra disease detection on sagittal CT slices.",
    )
    parser.add_argument("--version", action="version", version=f"vertebra-review {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--smoke-test",
        nargs="?",
        const="",
        metavar="STUDY",
        help="start the app offscreen on the demo study (or STUDY), run its models on one slice, exit 0 if all works",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="describe an image, DICOM folder, NIfTI, LabelMe JSON or study")
    inspect.add_argument("path", type=Path)
    inspect.set_defaults(func=cmd_inspect)

    imp = commands.add_parser("import", help="create or extend a study from DICOM, NIfTI or PNG/JPEG (+ LabelMe)")
    imp.add_argument("source", type=Path, help="a file or folder of DICOM, NIfTI, PNG or JPEG (with LabelMe JSON)")
    imp.add_argument("study", type=Path, help="the study folder (created if missing)")
    imp.add_argument("--reader", help="reader id for imported LabelMe JSON (default: the file's reader, or 'imported')")
    imp.add_argument(
        "--window",
        help="window of the PNG written beside DICOM slices: min-max (default, as in the "
        "paper), bone, soft, dicom or CENTER,WIDTH",
    )
    imp.add_argument("--sagittal", action="store_true", help="reformat axial or coronal series to sagittal slices")
    imp.add_argument("--count", type=int, default=11, help="sagittal slices per volume (default 11)")
    imp.add_argument("--step-mm", type=float, default=3.0, help="distance between sagittal slices (default 3 mm)")
    imp.add_argument("--thickness-mm", type=float, default=3.0, help="sagittal slab thickness (default 3 mm)")
    imp.add_argument("--key-file", type=Path, help="CSV file (kept outside the study) mapping cases to sources")
    seg = imp.add_argument_group("a vertebra segmentation of the CT (its bodies become boxes with their levels)")
    seg.add_argument("--labels", type=Path, metavar="MASKS",
                     help="a multi-label NIfTI (VerSe seg-vert, TotalSegmentator --ml) or a folder of one mask per "
                          "structure (vertebrae_L1.nii.gz, …) on the CT's grid")
    seg.add_argument("--label-scheme", choices=["verse", "totalsegmentator"],
                     help="whose label numbers the mask uses (default: from a structures.csv beside it or the name)")
    seg.add_argument("--subregions", type=Path, help="VerSe subregion map (found beside a VerSe mask by its name)")
    seg.add_argument("--consensus", action="store_true", help="write the boxes as the consensus, not as a reader")
    seg.add_argument("--grades", type=Path, metavar="CSV",
                     help="Genant grades per vertebra (columns subject or case, level, grade 0-3)")
    seg.add_argument("--subject", help="the subject of this CT in the grades table (default: from its file name)")
    seg.add_argument("--fracture-as", choices=["OVCF", "OF"], default="OVCF",
                     help="the disease a grade of 1-3 becomes (default OVCF; grade 0 is NORMAL)")
    imp.set_defaults(func=cmd_import)

    exp = commands.add_parser("export", help="write windowed PNGs with LabelMe JSON that open in labelme")
    exp.add_argument("study", type=Path)
    exp.add_argument("out", type=Path)
    source = exp.add_mutually_exclusive_group()
    source.add_argument("--reader", help="export this reader's annotations")
    source.add_argument("--consensus", action="store_true", help="export the consensus (the default)")
    source.add_argument("--model", help="export this model's predictions")
    exp.add_argument("--window", help="re-render slices with this window (bone, soft, min-max, dicom or C,W)")
    exp.add_argument("--embed-images", action="store_true", help="embed each PNG in its JSON as imageData")
    exp.set_defaults(func=cmd_export)

    synth = commands.add_parser("synth", help="write a synthetic phantom study (truth, three readers, DICOM + PNG)")
    synth.add_argument("out", type=Path, help="a new folder for the study")
    synth.add_argument("--cases", type=int, default=10)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--readers", type=int, default=3, help="simulated readers (default 3)")
    synth.add_argument("--site", choices=["A", "B"], default="A", help="scanner: A (default) or B (external)")
    synth.add_argument("--slices", type=int, default=10, help="sagittal slices per case (default 10)")
    synth.add_argument(
        "--prevalence",
        type=_prevalence,
        default=None,  # the paper's rates, filled in by the command: every command would load them otherwise
        help="per-box disease rates, for example OVCF=0.2,SN=0.05 (default: the paper's Table 2)",
    )
    synth.add_argument(
        "--disagreement",
        type=float,
        default=0.08,
        help="share of boxes on which the readers are not unanimous (default 0.08)",
    )
    synth.add_argument("--preview", action="store_true", help="also write preview.png, a montage with the truth")
    synth.add_argument("--workers", type=int, default=0, help="processes to render with (default: one per CPU)")
    synth.add_argument("--anatomy", type=anatomy_source, nargs="+", metavar="LABELS[:SCHEME]",
                       help="draw the cases from these real label maps (the second phantom source: deformed real "
                            "anatomy with a random appearance; no readers, the truth in the consensus)")
    synth.set_defaults(func=cmd_synth)

    from core.cli_commands import consensus, demo, detection, diagnosis, retrain

    groups = detection.register(commands)
    diagnosis.register(commands, **groups)
    consensus.register(commands)
    demo.register(commands)
    retrain.register(commands)

    gui = commands.add_parser("gui", help="open the desktop app")
    gui.add_argument("path", nargs="?", type=Path, help="a study, DICOM folder, NIfTI or image to open")
    gui.add_argument("--demo", action="store_true",
                     help="open a working copy of the bundled demo study with its demo models")
    gui.add_argument("--reader", help="your reader id")
    gui.set_defaults(func=cmd_gui)

    bench = commands.add_parser("bench", help="run a benchmark and print the figures")
    bench.add_argument(
        "what",
        choices=["io", "synth", "detect", "diagnose", "train", "gui"],
        help="io: DICOM reading, windowing and sagittal reformat; synth: phantom slices per second; "
        "detect: detector latency, FLOPs and the share of the matmul peak; diagnose: a whole slice through "
        "detection, extraction and classification; train: training images/s of the detector and patches/s "
        "of the classifier, with the time spent waiting for data; gui: slice switch, box drag, study open and GUI "
        "blocking, offscreen",
    )
    bench.add_argument("--preset", choices=["paper", "fast"], default="paper",
                       help="diagnose and train: the paper's model sizes, or the CPU preset's (fast)")
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--size", choices=["full", "smoke"], default="full",
                       help="full: the figures the README gives; smoke: the smallest run that goes through every "
                       "stage (tiny images, a few steps), as the test suite runs it")
    bench.add_argument("--device", default="cpu", help="detect: cpu, cuda, or all (the CPU and CUDA when present); "
                       "diagnose and train: cpu or cuda")
    bench.add_argument("--anatomy", type=anatomy_source, nargs="+", metavar="LABELS[:SCHEME]",
                       help="synth: label maps to time the anatomy source on (default: the bundled ones)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=cmd_bench)
    return parser


class _OwnRecords(logging.Filter):
    """Lets through only the app's own log records (the ``core`` loggers): what a library logs or warns (pydicom's
    tracebacks for a corrupt frame, Pillow's decompression-bomb warning) is a detail for ``--debug``, since the file's
    problem reaches the user as our one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "core" or record.name.startswith("core.")


def _log_to_stderr(debug: bool) -> logging.Handler:
    """A handler on the root logger that prints log records (and warnings) as ``vertebra-review: ...`` lines on
    stderr: only ours, or with ``--debug`` everything, with the libraries' tracebacks."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vertebra-review: %(message)s"))
    if not debug:
        handler.addFilter(_OwnRecords())
    logging.getLogger().addHandler(handler)
    logging.getLogger("core").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.captureWarnings(True)  # warnings become records of the "py.warnings" logger, so the filter sees them
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.smoke_test is not None:
        args.func = cmd_smoke_test
    elif not getattr(args, "command", None):
        parser.print_help()
        return EXIT_OK
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:  # a command group without its subcommand, such as "train"
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return EXIT_ERROR
    handler = _log_to_stderr(args.debug)
    try:
        return func(args)
    except VertebraReviewError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"vertebra-review: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vertebra-review: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback without --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"vertebra-review: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
