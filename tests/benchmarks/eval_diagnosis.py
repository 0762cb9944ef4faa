"""Classification accuracy of a model set on held-out studies, laid out like the paper's Table 3:

- on the annotated boxes (the classifier alone, as the paper's Table 3 evaluates the VCModule), and
- end to end: ``diagnose`` (detector + extraction + classifier) against the annotations, pairing boxes by IoM > 0.5.

    python tests/benchmarks/eval_diagnosis.py MODELS STUDY [STUDY ...] [--out DIR]

MODELS is anything ``diagnose --models`` takes. The same end-to-end figures come from ``vertebra-review diagnose``
then ``vertebra-review evaluate classification``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from core.evaluation.classification import calls_from, classification_metrics
from core.evaluation.classification_report import pair_files, write_classification_report
from core.models.pipeline import DiagnosisPipeline
from core.progress import run
from core.training.classification_data import SliceCache, box_samples
from core.training.classification_engine import predict_records
from core.training.datasets import study_records

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("studies", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="eval-diagnosis-"))
    pipeline = DiagnosisPipeline.load(args.models)
    print(f"models: {pipeline.describe()}")
    results = {}
    for study in args.studies:
        records, _ = study_records(study)
        classifier = pipeline.classifier
        probabilities = predict_records(classifier, records, SliceCache(classifier.config.window))
        truth = np.stack([s.labels for s in box_samples(records)])
        on_truth = classification_metrics(truth, probabilities, calls_from(probabilities,
                                                                         classifier.config.thresholds))
        _print(f"{study.name}, classifier on the annotated boxes", on_truth)
        run(pipeline.diagnose_inputs([study], out / study.name))
        end_to_end = write_classification_report(pair_files(out / study.name, study / "consensus"),
                                                 out / f"{study.name}-report")
        _print(f"{study.name}, end to end (missed {end_to_end['missed_vertebrae']}, extra "
               f"{end_to_end['extra_vertebrae']})", end_to_end)
        for m in (on_truth, end_to_end):
            for c in m["per_class"].values():
                c.pop("roc", None)
        results[study.name] = {"on_annotated_boxes": on_truth, "end_to_end": end_to_end}
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    print(f"predictions and reports: {out}")


if __name__ == "__main__":
    main()
