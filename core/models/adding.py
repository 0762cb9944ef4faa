"""Adding models to a study from elsewhere: the bundled demo models, a model package, a model set or another
study's active set, as a new version (validated completely first) that is activated when none is active."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.models.package import read_manifest
from core.models.registry import STUDY_FILE, ModelSet, Registry, resolve_models, write_model_set


def bundled_demo_models() -> Path:
    """The models folder of the bundled demo study (its active set is the demo models, trained on synthetic
    phantoms: :data:`DEMO_NOTICE`)."""
    from core.resources import resources_dir

    return resources_dir() / "demo" / "models"


@dataclass(frozen=True)
class AddedModels:
    """A model set added to a study by :func:`add_models`: the new version, whether it was activated (the study
    had no active model), and the active id afterwards."""

    added: ModelSet
    activated: bool
    active: str | None


def add_models(models_dir: str | Path, source: str | Path) -> AddedModels:
    """Add the models at ``source`` (anything :func:`resolve_models` accepts: a model set, a models folder or a
    study (its active set), a folder with one detector and at most one classifier package, or a detector package) to
    ``models_dir`` as a new version ``v<n>``, by :func:`write_model_set` (each package validated completely before
    anything is written, the set published under the study's write lock). It is activated, under the same lock,
    when no model is active (or the ``active`` file names none that is valid). It is a demo set when the source or
    one of its packages is marked demo. Raises :class:`ModelPackageError` naming the file at fault, in ``source``
    for a package that does not fit, in the study for a study that cannot be written (or the lock's
    :class:`~core.errors.StudyError`)."""
    source = Path(source)
    if (source / STUDY_FILE).is_file() and (source / "models").is_dir():
        source = source / "models"  # another study: its active set
    found = resolve_models(source)
    packages = [p for p in (found.detector, found.classifier) if p is not None]
    demo = found.demo or any(read_manifest(p).demo for p in packages)
    registry = Registry(models_dir)
    added = write_model_set(models_dir, None, found.detector, found.classifier, parent=registry.active_or_none(),
                            demo=demo, data={"added_from": [str(p) for p in packages]})
    with registry.write_lock():
        activated = registry.active_or_none() is None
        if activated:
            registry._activate(added.model_id)
    return AddedModels(added, activated, registry.active_or_none())
