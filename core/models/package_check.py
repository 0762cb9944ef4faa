"""A model package checked completely before anything of it is copied into a study: its manifest, its files (regular
files inside it), its weights (a safetensors file by its header, every tensor the architecture's, by name and shape,
and every value finite)."""

from __future__ import annotations

from pathlib import Path

from core.errors import ModelPackageError
from core.models.package import (
    MANIFEST,
    WEIGHTS,
    Manifest,
    package_dir,
    package_files,
    read_manifest,
    read_weights,
    safetensors_header,
)


def validate_package(folder: str | Path, kind: str) -> list[Path]:
    """Check a package completely, reading nothing but its own files, and return the files to copy: its manifest
    (of ``kind``, describing an architecture this app builds), every file a regular file inside it, the weights a
    safetensors file by its header whose tensors are exactly the architecture's (names and shapes), and all of
    their values finite. Raises :class:`ModelPackageError` naming the file and the reason."""
    folder = package_dir(folder)
    if not folder.is_dir():
        raise ModelPackageError("no such model package" if not folder.exists() else "not a package folder", folder)
    manifest = read_manifest(folder, kind=kind)
    files = package_files(folder)
    if WEIGHTS not in {f.name for f in files}:
        raise ModelPackageError(f"the package has no {WEIGHTS}", folder)
    expected, left_out = _architecture_shapes(manifest, folder)
    found = {name: shape for name, (_, shape) in safetensors_header(folder).items()
             if not (left_out and name.startswith(left_out))}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(n for n in set(found) & set(expected) if found[n] != expected[n])
    if missing or unexpected or wrong:
        first = (f"{wrong[0]} is {list(found[wrong[0]])}, the architecture needs {list(expected[wrong[0]])}"
                 if wrong else ", ".join([*missing[:2], *unexpected[:2]]))
        raise ModelPackageError(f"weights do not fit the architecture in the manifest ({len(missing)} missing, "
                                f"{len(unexpected)} unexpected, {len(wrong)} of another shape: {first})",
                                folder / WEIGHTS)
    read_weights(folder)  # every value finite
    return files


def _architecture_shapes(manifest: Manifest, folder: Path) -> tuple[dict[str, tuple[int, ...]], str | None]:
    """The name and shape of every tensor the manifest's architecture holds (built on the meta device: no memory,
    no weights), and the prefix of tensors that loading leaves out (a classifier's endplate head, when its
    manifest has none), as :func:`core.models.package.load_state` is called for each kind."""
    import torch

    parts: dict[str, torch.nn.Module] = {}
    left_out = None
    try:
        if manifest.kind == "detector":
            from core.models.detector import DetectorConfig, build_detector

            with torch.device("meta"):
                parts[""] = build_detector(DetectorConfig.from_json(manifest.architecture), use_imagenet=False)
        else:
            from core.models.classifier import ENDPLATE_PREFIX, ClassifierConfig, build_classifier
            from core.models.endplate import EndplateNet

            config = ClassifierConfig.from_json(manifest.architecture)
            with torch.device("meta"):
                parts[""] = build_classifier(config, use_imagenet=False)
                if config.endplate is not None:
                    parts[ENDPLATE_PREFIX] = EndplateNet(config.endplate)
                else:
                    left_out = ENDPLATE_PREFIX
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelPackageError(f"the manifest describes an unknown {manifest.kind} ({exc})",
                                folder / MANIFEST) from exc
    shapes = {prefix + name: tuple(tensor.shape) for prefix, model in parts.items()
              for name, tensor in model.state_dict().items()}
    return shapes, left_out
