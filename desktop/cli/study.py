"""Study commands: ``inspect``, ``import`` (DICOM, NIfTI, images and LabelMe into a study) and ``export``."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import VertebraReviewError
from desktop.cli.arguments import number, whole
from desktop.cli.output import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, drive, say, say_json, warn

MILLIMETRES = number(0, 100, low_open=True)  # a sagittal step or slab thickness


def cmd_inspect(args: argparse.Namespace) -> int:
    from core.inspection import inspect_path

    info = inspect_path(args.path)
    say_json(info)
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
        say(f"{case.case}: {case.slices} slices, {case.annotations} annotations")
    for source, existing in report.duplicates:
        warn(f"already imported as {existing}: {source}")
    for source, why in report.ignored:
        warn(f"ignored {source}: {why}")
    for source, why in report.skipped:
        warn(f"skipped {source}: {why}")
    for note in report.notes:
        warn(f"note: {note}")
    say(f"imported {len(report.cases)} cases, {report.slice_count} slices into {args.study}")
    if not report.cases and not report.duplicates:
        return EXIT_ERROR
    return EXIT_PARTIAL if report.skipped else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from core.study.exporter import check_export_source, export_study
    from core.study.layout import Study

    check_export_source(Study.open(args.study), args.reader, args.model)
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
        warn(f"skipped {where}: {why}")
    if report.errors and not report.written:  # a failure, not a partial export
        warn(f"vertebra-review: error: nothing was exported to {args.out}: "
             f"all {len(report.errors)} slices failed")
        return EXIT_ERROR
    say(f"exported {report.images} images and {report.annotations} annotations to {args.out}")
    return EXIT_PARTIAL if report.errors else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``inspect``, ``import`` and ``export``: what goes into a study and what comes out."""
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
    imp.add_argument("--count", type=whole(1, 500), default=11, help="sagittal slices per volume (default 11)")
    imp.add_argument("--step-mm", type=MILLIMETRES, default=3.0, help="distance between sagittal slices (default 3 mm)")
    imp.add_argument("--thickness-mm", type=MILLIMETRES, default=3.0, help="sagittal slab thickness (default 3 mm)")
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
