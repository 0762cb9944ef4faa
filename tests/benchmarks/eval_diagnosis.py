"""Classification accuracy of a model set on held-out studies, laid out like the paper's Table 3:

- on the annotated boxes (the classifier alone, as the paper's Table 3 evaluates the VCModule), and
- end to end: ``diagnose`` (detector + extraction + classifier) against the annotations, pairing boxes by the
  paper's hit rule (:func:`core.annotations.geometry.pair_by_iom`, IoM > 0.5).

    python tests/benchmarks/eval_diagnosis.py MODELS STUDY [STUDY ...] [--out DIR]

MODELS is anything ``diagnose --models`` takes. The same end-to-end figures come from ``vertebra-review diagnose``
then ``vertebra-review evaluate classification``.

``--sn-only`` measures only Schmorl's nodes, from the classifier's endplate head, which is much cheaper than the
whole classifier: on the annotated boxes, and end to end on the detector's boxes paired with the annotated ones in
the same way (:func:`core.annotations.geometry.pair_by_iom`; annotated nodes the detector missed are counted
apart). ``--boxes-only`` leaves out the end-to-end part (with or without ``--sn-only``). ``--cases N`` takes the
first N cases of each study; ``--blur SD`` probes how the classifier depends on fine detail and noise: the slices
blurred by a Gaussian of SD pixels, on the annotated boxes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from core.annotations.geometry import pair_by_iom
from core.annotations.model import CLASS_CODES
from core.evaluation.classification import calls_from, classification_metrics
from core.evaluation.classification_report import pair_files, write_classification_report
from core.models.classifier import SN_COLUMN
from core.models.pipeline import DiagnosisPipeline
from core.progress import run
from core.training.classification_data import SliceCache, box_samples
from core.training.classification_engine import predict_records
from core.training.datasets import study_records
from core.training.endplate_engine import predict_endplate

COLUMNS = ("sensitivity", "specificity", "ppv", "npv", "f1", "auc")


def _row(name: str, m: dict) -> str:
    cells = " | ".join("  –  " if m[k] is None else f"{m[k]:.3f}" for k in COLUMNS)
    return f"  {name:<28} | {cells} | positives {m.get('positives', '')}"


def _print(title: str, metrics: dict) -> None:
    print(f"{title}: {metrics['boxes']} boxes")
    print(f"  {'class':<28} | " + " | ".join(f"{k[:5]:>5}" for k in COLUMNS))
    for code, m in metrics["per_class"].items():
        print(_row(code, m))
    summary = {k: v["mean"] for k, v in metrics["summary"].items()}
    sd = {k: v["sd"] for k, v in metrics["summary"].items()}
    print(_row("mean OVCF, OF, KD, PS", summary))
    print(_row("  SD", sd), flush=True)


class BlurredSlices(SliceCache):
    """The model's input of each slice, blurred by a Gaussian of ``sd`` pixels (none at 0)."""

    def __init__(self, window: str, sd: float) -> None:
        super().__init__(window)
        self.sd = sd
        self._blurred: dict[tuple[Path, str, str], np.ndarray] = {}

    def image(self, record) -> np.ndarray:
        image = super().image(record)
        if self.sd <= 0:
            return image
        key = (record.study, record.case, record.slice_id)
        if key not in self._blurred:
            smooth = ndimage.gaussian_filter(image.astype(np.float32), self.sd)
            self._blurred[key] = np.clip(np.rint(smooth), 0, 255).astype(np.uint8)
        return self._blurred[key]


def _sn_metrics(truth: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Per-class metrics of SN alone (the other columns are left empty)."""
    full_truth = np.zeros((len(truth), len(CLASS_CODES)), dtype=np.float32)
    full_truth[:, SN_COLUMN] = truth
    full = np.zeros_like(full_truth)
    full[:, SN_COLUMN] = probabilities
    metrics = classification_metrics(full_truth, full, calls_from(full, {c: (threshold if c == "SN" else 2.0)
                                                                      for c in CLASS_CODES}))
    return metrics["per_class"]["SN"]


def _sn_line(title: str, m: dict, extra: str = "") -> None:
    auc = "–" if m["auc"] is None else f"{m['auc']:.3f}"
    ppv = "–" if m["ppv"] is None else f"{m['ppv']:.3f}"
    print(f"{title}: SN sensitivity {m['sensitivity']:.3f}, specificity {m['specificity']:.4f}, PPV {ppv}, "
          f"AUC {auc}; TP {m['tp']}, FP {m['fp']}, FN {m['fn']}, TN {m['tn']}{extra}", flush=True)


def sn_only(pipeline: DiagnosisPipeline, study: Path, end_to_end: bool = True) -> dict:
    classifier = pipeline.classifier
    if classifier is None or classifier.endplate is None:
        raise SystemExit("--sn-only needs a classifier with an endplate head")
    geometry, device = classifier.config.endplate, classifier.compute.device
    threshold = classifier.config.thresholds["SN"]
    records, _ = study_records(study)
    cache = SliceCache(classifier.config.window)
    truth = np.stack([s.labels for s in box_samples(records)])[:, SN_COLUMN]
    on_truth = _sn_metrics(truth, predict_endplate(classifier.endplate, records, cache, geometry, device), threshold)
    _sn_line(f"{study.name}, {len(truth)} annotated boxes", on_truth)
    on_truth.pop("roc", None)
    if not end_to_end:
        return {"on_annotated_boxes": on_truth}
    paired_truth, paired_probabilities, missed_nodes, missed, extra = [], [], 0, 0, 0
    for record in records:
        image = cache.image(record)
        [found] = pipeline.detector.detect([image], threshold=pipeline.threshold)
        boxes = np.asarray(found.boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.array([float("SN" in {d.value for d in diseases}) for diseases in record.diseases])
        pairs = pair_by_iom(boxes, record.boxes)
        missed += len(record.boxes) - len(pairs)
        extra += len(boxes) - len(pairs)
        missed_nodes += int(labels.sum()) - int(sum(labels[c] for _, c in pairs))
        if pairs:
            paired_probabilities.extend(classifier.endplate_probabilities(image, boxes[[r for r, _ in pairs]]))
            paired_truth.extend(labels[c] for _, c in pairs)
    end_to_end = _sn_metrics(np.array(paired_truth), np.array(paired_probabilities), threshold)
    end_to_end.update({"missed_vertebrae": missed, "extra_vertebrae": extra, "missed_nodes": missed_nodes})
    _sn_line(f"{study.name}, end to end, {len(paired_truth)} paired boxes", end_to_end,
             f"; the detector missed {missed_nodes} of {int(truth.sum())} node boxes ({missed} vertebrae in all)")
    end_to_end.pop("roc", None)
    return {"on_annotated_boxes": on_truth, "end_to_end": end_to_end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("studies", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sn-only", action="store_true", help="only Schmorl's nodes, from the endplate head")
    parser.add_argument("--boxes-only", action="store_true",
                        help="the classifier on the annotated boxes only, without the end-to-end part")
    parser.add_argument("--blur", type=float, default=0.0, metavar="SD",
                        help="a robustness probe: the slices blurred (a Gaussian of SD pixels) before the classifier "
                             "sees them; implies --boxes-only")
    parser.add_argument("--cases", type=int, default=None, metavar="N", help="only the first N cases of each study")
    args = parser.parse_args()
    if args.blur < 0 or (args.cases is not None and args.cases < 1):
        parser.error("--blur must be 0 or more and --cases 1 or more")
    if args.sn_only and (args.blur or args.cases):
        parser.error("--blur and --cases are not for --sn-only")
    args.boxes_only = args.boxes_only or args.blur > 0
    out = args.out or Path(tempfile.mkdtemp(prefix="eval-diagnosis-"))
    pipeline = DiagnosisPipeline.load(args.models)
    print(f"models: {pipeline.describe()}", flush=True)
    results = {}
    if args.sn_only:
        for study in args.studies:
            results[study.name] = sn_only(pipeline, study, end_to_end=not args.boxes_only)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary-sn.json").write_text(json.dumps(results, indent=2))
        print(f"figures: {out / 'summary-sn.json'}")
        return
    for study in args.studies:
        records, _ = study_records(study)
        if args.cases is not None:
            kept = sorted({r.case for r in records})[: args.cases]
            records = [r for r in records if r.case in kept]
        classifier = pipeline.classifier
        probabilities = predict_records(classifier, records, BlurredSlices(classifier.config.window, args.blur))
        truth = np.stack([s.labels for s in box_samples(records)])
        on_truth = classification_metrics(truth, probabilities, calls_from(probabilities,
                                                                         classifier.config.thresholds))
        _print(f"{study.name}, classifier on the annotated boxes", on_truth)
        for c in on_truth["per_class"].values():
            c.pop("roc", None)
        if args.boxes_only:
            results[study.name] = {"on_annotated_boxes": on_truth}
            continue
        run(pipeline.diagnose_inputs([study], out / study.name))
        end_to_end = write_classification_report(pair_files(out / study.name, study / "consensus"),
                                                 out / f"{study.name}-report")
        _print(f"{study.name}, end to end (missed {end_to_end['missed_vertebrae']}, extra "
               f"{end_to_end['extra_vertebrae']})", end_to_end)
        for c in end_to_end["per_class"].values():
            c.pop("roc", None)
        results[study.name] = {"on_annotated_boxes": on_truth, "end_to_end": end_to_end}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    print(f"predictions and reports: {out}")


if __name__ == "__main__":
    main()
