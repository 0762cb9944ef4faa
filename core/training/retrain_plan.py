"""What a retrain would do, before it starts (Qt-free; slow enough to run off the GUI thread): the data summary, the
device and precision it would train on, each component's default epochs, and the active model it would fine-tune."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.study.layout import Study


@dataclass(frozen=True)
class RetrainPlan:
    study_root: Path
    summary: object  # core.training.retrain.DataSummary
    device: str  # for people: "NVIDIA H200, float16 mixed" or "CPU, float32"
    cuda: bool
    epochs: dict[str, int]  # each component's preset epochs
    active: str | None
    active_has_classifier: bool

    @property
    def trainable(self) -> bool:
        return self.summary.training_slices > 0


def plan_retrain(study_root: str | Path, preset: str = "cpu") -> RetrainPlan:
    from core.models.devices import training_compute
    from core.models.registry import Registry
    from core.training.retrain import RetrainOptions, training_data
    from core.training.retrain_progress import default_epochs

    study = Study.open(study_root)
    _, _, summary = training_data(study, RetrainOptions(preset=preset))
    compute = training_compute("auto")
    active = Registry(study.root / "models").active()
    return RetrainPlan(study.root, summary, compute.describe(), compute.kind == "cuda", default_epochs(preset),
                       active.model_id if active else None, bool(active and active.classifier))
