"""The study's active model, as the review workspace sees it.

:func:`peek_active_model` reads ``models/active`` and the model set's manifest without importing the model code
(which loads PyTorch, seconds on a cold start), so that a study opens at once and shows the model's predictions and
its demo banner. :func:`load_pipeline` loads the diagnosis pipeline itself, to be run in a background worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ModelPackageError, StudyError
from core.paths import inside, is_id
from core.study.layout import Study, check_id

#: Shown over the image whenever the active model is a demo model (the same words as the model registry's).
DEMO_BANNER = "demo model, trained on synthetic phantoms, not for clinical use"
NO_MODEL = "No model in this study: this is a manual annotation tool (draw, label and review boxes yourself)."
_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelLink:
    """``model_id`` names the predictions to show; ``path`` is the model set to load (None: predictions only)."""

    model_id: str | None = None
    path: Path | None = None
    demo: bool = False
    problem: str | None = None


def _json(file: Path) -> dict[str, Any]:
    if file.stat().st_size > _MAX_BYTES:
        raise ValueError("file is too large")
    data = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def peek_active_model(study: Study) -> ModelLink:
    """The active model set of ``study`` (``models/active``), else the model named in study.json's settings
    (its predictions can be shown, it cannot be run), else none."""
    active = study.root / "models" / "active"
    if active.is_file():
        try:
            model_id = check_id(_json(active).get("id"), "model")
        except (OSError, UnicodeDecodeError, ValueError, RecursionError, StudyError) as exc:
            return ModelLink(problem=f"{active}: the active-model file is not usable ({exc})")
        folder = study.root / "models" / model_id
        try:
            inside(study.root, Path("models", model_id), kind="new", what="the active model set")
            manifest = _json(folder / "manifest.json")
        except StudyError as exc:  # a link out of the study: its models are not run (as a package's files are not)
            return ModelLink(model_id, None, problem=str(exc))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            return ModelLink(model_id, None, problem=f"{folder}: the active model set cannot be read ({exc})")
        return ModelLink(model_id, folder, demo=bool(manifest.get("demo")))
    named = study.settings.model
    if isinstance(named, str) and is_id(named) and (study.root / "predictions" / named).is_dir():
        return ModelLink(named, None)
    return ModelLink()


def load_pipeline(path: Path, device: str = "auto") -> Any:
    """Load the diagnosis pipeline of the model set at ``path``. Raises ModelPackageError when the model code is
    not available or the model is missing or unfit. Slow (PyTorch): call it from a worker."""
    try:
        from core.models.pipeline import DiagnosisPipeline
    except ImportError as exc:
        raise ModelPackageError(f"the model code cannot be loaded ({exc}); the app goes on without a model",
                                path) from exc
    return DiagnosisPipeline.load(path, device=device)
