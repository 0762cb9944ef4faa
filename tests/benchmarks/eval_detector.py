"""Detection accuracy of a detector package on held-out studies, under the inference settings that trade work for
speed: torchvision's 1000 proposals in float32 against the app's 100 proposals (and bfloat16 on CPUs with bf16
units), on one view of each slice and on four (as it is, mirrored, upside down and both, fused: the bundled
detector's setting). Prints one table; the same figures come from ``vertebra-review detect`` + ``evaluate detection``.

    python tests/benchmarks/eval_detector.py MODEL STUDY [STUDY ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from core.evaluation.detection_report import pair_files, write_detection_report
from core.models.run_detect import detect_inputs
from core.progress import run

VARIANTS = {
    "torchvision defaults (1000 proposals, fp32)": {"fast": False, "precision": "fp32", "views": 1},
    "100 proposals, fp32": {"fast": True, "precision": "fp32", "views": 1},
    "100 proposals, auto precision": {"fast": True, "precision": "auto", "views": 1},
    "100 proposals, auto precision, 4 views": {"fast": True, "precision": "auto", "views": 4},
}


def _figure(value: float | None, spec: str) -> str:
    """A figure in ``spec``, or n/a where it is undefined (a correlation of counts that never vary)."""
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("studies", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="keep predictions and reports here")
    parser.add_argument("--variants", default="all", help="comma-separated indices of the variants, or all")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="eval-detector-"))
    chosen = list(VARIANTS.items())
    if args.variants != "all":
        chosen = [chosen[int(i)] for i in args.variants.split(",")]
    rows = []
    for study in args.studies:
        for name, options in chosen:
            tag = f"{study.name}-{'fast' if options['fast'] else 'default'}-{options['precision']}-{options['views']}"
            started = time.perf_counter()
            report = run(detect_inputs([study], args.model, out / tag, threshold=0.05, **options))  # AP needs them all
            seconds = (time.perf_counter() - started) / max(report.slices, 1)
            images, _ = pair_files(out / tag, study / "consensus")
            m = write_detection_report(images, out / f"{tag}-report")
            rows.append({"study": study.name, "variant": name, "ap50": m["ap50"], "ap50_95": m["ap50_95"],
                         "fp_rate": m["fp_rate"], "fn_rate": m["fn_rate"], "hits": m["hits"], "fp": m["fp"],
                         "fn": m["fn"], "count_r": m["count_r"], "slices": m["images"], "s_per_slice": seconds})
            r = rows[-1]
            print(f"{r['study']:>8} | {name:<44} | AP50 {_figure(r['ap50'], '.4f')} | AP50:95 "
                  f"{_figure(r['ap50_95'], '.4f')} | FP {_figure(r['fp_rate'], '.2%')} ({r['fp']}) | FN "
                  f"{_figure(r['fn_rate'], '.2%')} ({r['fn']}) | r {_figure(r['count_r'], '.3f')} | "
                  f"{seconds:.2f} s/slice", flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    print(f"predictions and reports: {out}")


if __name__ == "__main__":
    main()
