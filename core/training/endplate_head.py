"""The classifier's endplate head in a package: trained after the main network (:func:`endplate_head`, called by
:func:`core.training.classification_engine.train_classifier_on`), kept from the parent when there is too little to
train it on, or added to an existing classifier package without training its main network again
(:func:`add_endplate_head`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from core.annotations.model import CLASS_CODES
from core.errors import TrainingError
from core.evaluation.classification import (
    MIN_SPECIFICITY,
    calls_from,
    choose_thresholds,
    classification_metrics,
    unlearnt_classes,
)
from core.models.classifier import ENDPLATE_PREFIX, SN_COLUMN, ClassifierConfig, VertebraClassifier, build_classifier
from core.models.devices import Compute, training_compute
from core.models.endplate import EndplateGeometry, EndplateNet
from core.models.package import Manifest, load_state, read_manifest, write_package
from core.models.registry import DEMO_NOTICE
from core.progress import Progress, ProgressGenerator
from core.training import distributed
from core.training.classification_data import SliceCache, box_samples
from core.training.classification_validation import (
    TrainedClassifier,
    box_truth,
    predict_records,
    stored_metrics,
    train_and_validation,
)
from core.training.datasets import SliceRecord
from core.training.endplate_engine import EndplateTraining, TrainedEndplate, predict_endplate, train_endplate

#: How a classifier package's per-class thresholds are chosen, as its ``training`` entry records it.
THRESHOLD_RULE = ("per class, the highest threshold with the best sensitivity on the validation split among those "
                  f"with specificity >= {MIN_SPECIFICITY}")


class HeadSettings(Protocol):
    """What :func:`endplate_head` reads of the classifier's training settings."""

    endplate: bool
    endplate_steps: int
    seed: int


@dataclass
class EndplateHead:
    """The endplate head a package gets: its bands, weights, validation SN probabilities and where it came from."""

    geometry: EndplateGeometry
    state: dict[str, torch.Tensor]
    validation: np.ndarray
    status: str  # "trained" or "kept from the parent"


def with_head(state: Mapping[str, torch.Tensor], head: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A classifier's weights with its endplate head's, under the head's prefix."""
    return {**state, **{ENDPLATE_PREFIX + k: v for k, v in head.items()}}


def endplate_head(train: Sequence[SliceRecord], val: Sequence[SliceRecord], config: ClassifierConfig,
                  settings: HeadSettings, compute: Compute, cache: SliceCache,
                  parent: dict[str, torch.Tensor] | None) -> ProgressGenerator[EndplateHead | None]:
    """The endplate head for the package: trained when ``settings.endplate`` and the data has enough nodes, else
    the parent's unchanged, else none."""
    geometry = config.endplate or EndplateGeometry()
    if not distributed.is_main():
        return None
    if settings.endplate:
        trained = yield from train_endplate(train, val, geometry,
                                            EndplateTraining(steps=settings.endplate_steps, seed=settings.seed),
                                            cache=cache, device=compute.device, initial_state=parent)
        if trained is not None:
            return EndplateHead(geometry, trained.state, trained.validation, "trained")
    if parent is None or config.endplate is None:
        return None
    model = EndplateNet(geometry)
    model.load_state_dict(parent)
    return EndplateHead(geometry, parent, predict_endplate(model.to(compute.device), val, cache, geometry,
                                                          compute.device), "kept from the parent")


def add_endplate_head(
    package: str | Path,
    studies: Sequence[str | Path],
    out: str | Path,
    *,
    validation: Sequence[str | Path] = (),
    steps: int = 400,
    seed: int = 0,
    device: str = "auto",
    source: str = "consensus",
    val_fraction: float = 0.2,
) -> ProgressGenerator[TrainedClassifier]:
    """A copy of the classifier ``package`` at ``out`` with a newly trained endplate head (replacing any it has) and
    the SN threshold chosen on the validation split: for a classifier that does not see Schmorl's nodes, without
    training its main network again. The main network's weights and the other classes' thresholds are kept."""
    started = time.perf_counter()
    source_package = Path(package)
    manifest = read_manifest(source_package, kind="classifier")
    config = ClassifierConfig.from_json(manifest.architecture)
    train, val = train_and_validation([Path(s) for s in studies], validation, source, val_fraction)
    if not box_samples(train) or not box_samples(val):
        raise TrainingError("the endplate head needs annotated vertebrae to train on and to validate on")
    network, main = _main_network(source_package, config, device)
    cache = SliceCache(config.window)
    truth = box_truth(val)
    yield Progress("validate", 0, 1, "the main network on the validation split")
    probabilities = predict_records(main, val, cache)
    geometry = config.endplate or EndplateGeometry()
    trained = yield from train_endplate(train, val, geometry, EndplateTraining(steps=steps, seed=seed), cache=cache,
                                        device=main.compute.device)
    if trained is None:
        raise TrainingError(f"too few Schmorl's node boxes to train the endplate head on in "
                            f"{', '.join(map(str, studies))}")
    probabilities[:, SN_COLUMN] = trained.validation
    thresholds = dict(config.thresholds) | {"SN": choose_thresholds(truth, probabilities)["SN"]}
    metrics = classification_metrics(truth, probabilities, calls_from(probabilities, thresholds))
    config = replace(config, endplate=geometry).with_thresholds(thresholds)
    state = with_head(network.state_dict(), trained.state)
    seconds = time.perf_counter() - started
    endplate_training = _head_training_record(trained, studies, validation, steps, seed, seconds)
    out = Path(out)
    write_package(out, kind="classifier", state=state, architecture=config.to_json(), classes=list(CLASS_CODES),
                  input_spec=manifest.input, training=_added_head_record(manifest, thresholds, endplate_training),
                  metrics={"validation": stored_metrics(metrics)}, parent=manifest.parent, demo=manifest.demo,
                  notes=DEMO_NOTICE if manifest.demo else "", half=manifest.demo)
    return TrainedClassifier(out, int(manifest.training.get("best_epoch", 0) or 0), metrics, thresholds, [],
                             seconds)


def _main_network(package: Path, config: ClassifierConfig, device: str) -> tuple[torch.nn.Module, VertebraClassifier]:
    """The package's classifier without its endplate head (any it has is left out): the network whose weights the
    new package keeps, and the classifier that scores the validation boxes with it."""
    compute = training_compute(device, "fp32")
    network = build_classifier(config, use_imagenet=False)
    load_state(network, package, exclude=ENDPLATE_PREFIX)
    return network, VertebraClassifier(network, replace(config, endplate=None), compute, package)


def _head_training_record(trained: TrainedEndplate, studies: Sequence[str | Path], validation: Sequence[str | Path],
                          steps: int, seed: int, seconds: float) -> dict[str, Any]:
    """How the added head was trained: on what, how long, its best step and validation AUC."""
    return {"studies": [str(s) for s in studies], "validation": [str(v) for v in validation], "steps": steps,
            "seed": seed, "best_step": trained.step, "positives": trained.positives, "validation_auc": trained.auc,
            "seconds": round(seconds, 1)}


def _added_head_record(manifest: Manifest, thresholds: dict[str, float],
                       endplate_training: dict[str, Any]) -> dict[str, Any]:
    """The source package's ``training`` entry, with how the head was added and the SN threshold chosen again."""
    return dict(manifest.training) | {
        "endplate_head": "added", "not_learnt": unlearnt_classes(thresholds), "endplate_training": endplate_training,
        "threshold_rule": f"{THRESHOLD_RULE} (SN chosen again with the endplate head; the other classes' kept)"}
