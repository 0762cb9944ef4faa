"""``train … --init PKG``: start a training run from a package's architecture and weights (fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import VertebraReviewError


def fine_tune_from(package: Path, kind: str) -> dict[str, Any]:
    """The package's architecture, weights and id, to fine-tune instead of starting anew."""
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
    return {"architecture": architecture, "initial_state": read_weights(package), "parent": manifest.model_id or None}
