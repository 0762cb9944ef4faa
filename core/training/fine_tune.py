"""``train … --init PKG``: start a training run from a package's architecture and weights (fine-tuning)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import TrainingError, VertebraReviewError


def fine_tune_from(package: Path, kind: str, changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The package's architecture, weights and id, to fine-tune instead of starting anew; ``changes`` replace
    settings of its architecture that the weights do not fix (a classifier's ``smoothing``)."""
    from core.models.package import read_manifest, read_weights

    manifest = read_manifest(package, kind=kind)
    if kind == "detector":
        from core.models.detector import DetectorConfig as Config
    else:
        from core.models.classifier import ClassifierConfig as Config
    try:
        architecture = Config.from_json(manifest.architecture)
    except (TypeError, ValueError) as exc:
        raise VertebraReviewError(f"the manifest describes an unknown {kind} ({exc})", package) from exc
    if changes:
        try:
            architecture = replace(architecture, **changes)
        except (TypeError, ValueError) as exc:
            raise TrainingError(str(exc)) from exc
    return {"architecture": architecture, "initial_state": read_weights(package), "parent": manifest.model_id or None}
