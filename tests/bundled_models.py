"""The bundled demo study's active model set, read from the study itself, so that tests follow the bundle when it is
retrained (its id changes with each recipe: demo-v1, demo-v2 …)."""

from __future__ import annotations

from core.models.adding import bundled_demo_models
from core.models.registry import Registry

BUNDLED_MODELS = bundled_demo_models()
BUNDLED_ID: str = Registry(BUNDLED_MODELS).active_id() or ""
BUNDLED_SET = BUNDLED_MODELS / BUNDLED_ID
