"""Stand-ins for the retrain child's body (no training): they speak the same pipe protocol as
:func:`core.training.retrain_child.run_retrain`, quickly. Module-level functions, so a spawned child can import
them; no Qt here."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.training.retrain_plan import RetrainPlan

GATE_WORSE = {"component": "detector", "metric": "AP50", "new": 0.61, "active": 0.8, "margin": 0.01,
              "passed": False}


def _progress(stage: str, step: int, total: int, message: str, **metrics: float) -> tuple[str, dict]:
    return "progress", {"stage": stage, "step": step, "total": total, "message": message, "metrics": metrics}


def fake_retrain(connection, study_root: str, options: dict) -> None:
    """Two epochs of a detector (four loss points, two AP50 points), then what ``options["fake"]`` says: ``result``
    (a candidate that is not activated), ``error`` (a one-line error), ``crash`` (exit code 3 without a word) or
    ``hang`` (trains on until stopped)."""
    mode = options.get("fake", "result")
    connection.send(_progress("gather", 1, 1, "6 slices from 3 cases"))
    for epoch in (1, 2):
        for step in (1, 2):
            time.sleep(0.05)
            connection.send(_progress("train", step, 2, f"epoch {epoch}/2 loss", loss=1.0 / (epoch + step),
                                      lr=0.01, epoch=epoch))
        connection.send(_progress("validate", epoch, 2, f"epoch {epoch}: AP50", ap50=0.5 + 0.05 * epoch,
                                  fp_rate=0.1, fn_rate=0.05, epoch=epoch))
    if mode == "hang":
        while True:
            time.sleep(0.1)
    if mode == "crash":
        os._exit(3)
    if mode == "error":
        connection.send(("error", "the loss became nan at epoch 2, step 1; lower the learning rate"))
    else:
        connection.send(_progress("gate", 1, 1, "kept as a candidate"))
        connection.send(("result", {"model_id": "v9", "activated": False, "previous": "fake-v1",
                                    "description": "v9: kept as a candidate", "summary": "6 slices",
                                    "gate": [GATE_WORSE]}))
    connection.close()


def fake_plan(study_root: Path, epochs: int = 2) -> RetrainPlan:
    from core.training.retrain import DataSummary  # loads PyTorch: not in the child

    summary = DataSummary(slices=6, cases=3, training_slices=4, validation_slices=2, validation_cases=["case-0003"],
                          boxes_per_class={"OVCF": 5, "OF": 1, "SN": 0, "KD": 0, "PS": 2, "NORMAL": 40},
                          new_slices=2, active_model="fake-v1")
    return RetrainPlan(study_root, summary, "CPU, float32", False, {"detector": epochs, "classifier": epochs},
                       "fake-v1", False)
