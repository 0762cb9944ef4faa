"""A real CT slice imported under each window a study can be imported with, a model set of a chosen rendering, and
a recorder of what the networks are handed (shared by tests/core/test_rendering.py and the app's model runner test).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from core.annotations.model import Box, SliceAnnotation, Vertebra
from core.models.classifier import VertebraClassifier
from core.models.detector import VertebraDetector
from core.progress import run
from core.study.importer import ImportOptions, import_source
from core.study.layout import Study

#: Every window ``import --window`` takes: the named ones, the file's own, and a CENTER,WIDTH pair.
IMPORT_WINDOWS = ("min-max", "bone", "soft", "dicom", "50,350")


def import_slice(source: Path, root: Path, window: str) -> tuple[Study, str, str]:
    """``source`` (one DICOM file) imported with ``--window window``, with one consensus box so training sees it."""
    run(import_source(source, root, ImportOptions(window=window)))
    study = Study.open(root)
    [(case, slice_id)] = study.all_slices()
    image = study.read_image(case, slice_id)
    box = Vertebra(Box(image.width * 0.3, image.height * 0.3, image.width * 0.6, image.height * 0.55))
    study.save_annotation(SliceAnnotation(image.width, image.height, (box,), reviewed=True), case, slice_id)
    return study, case, slice_id


def model_set_with_rendering(tiny_model_study: Path, destination: Path, rendering: str) -> Path:
    """A copy of the tiny model set whose packages say they learnt from ``rendering`` (the weights do not care)."""
    source = tiny_model_study / "models" / "tiny-v1"
    shutil.copytree(source, destination)
    for part in ("detector", "classifier"):
        manifest = destination / part / "manifest.json"
        data = json.loads(manifest.read_text())
        data["architecture"]["window"] = rendering
        manifest.write_text(json.dumps(data))
    return destination


class NetworkInputs:
    """Records every slice handed to the detector's and the classifier's networks (``install(monkeypatch)``)."""

    def __init__(self) -> None:
        self.detector: list[np.ndarray] = []
        self.classifier: list[np.ndarray] = []

    def install(self, monkeypatch) -> NetworkInputs:
        detect, predict = VertebraDetector.detect, VertebraClassifier.predict

        def recording_detect(detector, images, *args, **kwargs):
            self.detector.extend(np.array(image, copy=True) for image in images)
            return detect(detector, images, *args, **kwargs)

        def recording_predict(classifier, images, *args, **kwargs):
            self.classifier.extend(np.array(image, copy=True) for image in images)
            return predict(classifier, images, *args, **kwargs)

        monkeypatch.setattr(VertebraDetector, "detect", recording_detect)
        monkeypatch.setattr(VertebraClassifier, "predict", recording_predict)
        return self

    def only(self) -> np.ndarray:
        """The one slice both networks were handed (they must have been handed the same)."""
        assert len(self.detector) == 1, f"the detector was handed {len(self.detector)} slices"
        assert len(self.classifier) == 1, f"the classifier was handed {len(self.classifier)} slices"
        assert self.detector[0].dtype == self.classifier[0].dtype == np.uint8
        assert np.array_equal(self.detector[0], self.classifier[0])
        return self.detector[0]
