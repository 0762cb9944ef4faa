"""Make the README screenshot of the app on a real CT (not a test; pytest does not collect it).

    xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \\
        .venv/bin/python tests/desktop/make_real_screenshot.py CT MODELS OUT.png [--slab s008]

CT is a real volume (NIfTI or a DICOM series), for example the shared chest CT; MODELS a model set, for example
``resources/demo/models/demo-v7``. The CT is imported into a scratch study as the app imports it (11 sagittal
slabs), the model set added and run on every slab, and the app opened on it with only the model's boxes shown. On
``--slab`` (default: the first with one) the model's first box that is unsure because it calls a disease on a body
at the image's edge is selected, so that the selected-box panel says why; elsewhere the middle slab is shown.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core.models.pipeline import DiagnosisPipeline
from core.models.registry import Registry, write_model_set
from core.progress import run
from core.review.confidence import ModelCall, cut_call
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study
from desktop.app import create_app
from tests.desktop.make_screenshots import capture, open_window, settle


def cut_calls(study: Study, model_id: str) -> dict[tuple[str, str], list[int]]:
    """Per slab, the model's boxes that call a disease on a body at the image's edge."""
    found = {}
    for key in study.all_slices():
        result = study.load_annotation(*key, model=model_id)
        if result is None:
            continue
        size = ModelCall.of(result).image_size
        cut = [i for i, v in enumerate(result.vertebrae) if cut_call(v, size)]
        if cut:
            found[key] = cut
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ct", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--slab", help="the slab to show, for example s008")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vr-real-shot-") as work:
        root = Path(work) / "study"
        run(import_source(args.ct, root, ImportOptions()))
        model_id = args.models.name
        write_model_set(root / "models", model_id, args.models / "detector", args.models / "classifier", demo=True)
        Registry(root / "models").activate(model_id)
        study = Study.open(root)
        run(DiagnosisPipeline.load(root / "models").diagnose_study(study))
        cut = cut_calls(study, model_id)
        keys = study.all_slices()
        key = next((k for k in keys if k[1] == args.slab), None) or next(iter(cut), keys[len(keys) // 2])
        app = create_app()
        window = open_window(app, root, "dr-lee")
        window.controller.show(key)
        window.controller.set_overlay("model")
        if cut.get(key):
            window.controller.select_model(cut[key][0])
        settle(app, 2)
        capture(app, window, args.out)
        print(f"slab {key[1]}; boxes at the edge with a disease called: "
              + (", ".join(f"{k[1]} {v}" for k, v in cut.items()) or "none"))
        window.close()


if __name__ == "__main__":
    main()
