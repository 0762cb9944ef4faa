"""``vertebra-review models``: a study's model versions (list, activate, roll back, add)."""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop.cli.output import EXIT_ERROR, EXIT_OK, say, warn


def cmd_models(args: argparse.Namespace) -> int:
    from core.models.registry import Registry

    if not args.study.is_dir():  # a mistyped path would list nothing, or be made into a models folder by ``add``
        what = "no such study or models folder" if not args.study.exists() else "a study or models folder, not a file"
        warn(f"vertebra-review: error: {args.study}: {what}")
        return EXIT_ERROR
    registry = Registry(args.study / "models" if (args.study / "study.json").is_file() else args.study)
    if args.action == "activate":
        if not args.model_id:
            warn("vertebra-review: error: activate needs a model id")
            return EXIT_ERROR
        say(f"active: {registry.activate(args.model_id).describe()}")
    elif args.action == "rollback":
        say(f"active: {registry.rollback().describe()}")
    elif args.action == "add" and _add_model_set(registry, args) != EXIT_OK:
        return EXIT_ERROR
    active = registry.active_id()
    for version in registry.versions():
        mark = "*" if version.model_id == active else " "
        say(f"{mark} {version.model_id}  {version.created}  parent {version.parent or '-'}  "
            f"{'demo' if version.demo else ''}")
    if not registry.versions():
        say(f"no model versions in {registry.root}")
    if active is not None and active not in {v.model_id for v in registry.versions()}:
        warn(f"note: {registry.root}: the active model set is {active!r}, which is not here (diagnose and the app "
             "will refuse it): activate one of the sets listed")
    return EXIT_OK


def _add_model_set(registry, args: argparse.Namespace) -> int:
    """``models STUDY add ID --detector PKG [--classifier PKG] [--activate]``: packages trained elsewhere (on a GPU
    machine, say) become a version of the study; the packages are checked before anything is written."""
    from core.models.package import read_manifest
    from core.models.registry import write_model_set

    if not args.model_id or args.detector is None:
        warn("vertebra-review: error: add needs a new model id and --detector PKG")
        return EXIT_ERROR
    packages = [p for p in (args.detector, args.classifier) if p is not None]
    demo = any(read_manifest(p).demo for p in packages)  # write_model_set checks each package's kind
    added = write_model_set(registry.root, args.model_id, args.detector, args.classifier,
                            parent=registry.active_id(), demo=demo,
                            data={"added_from": [str(p) for p in packages]})
    say(f"added: {added.describe()}")
    if args.activate:
        say(f"active: {registry.activate(args.model_id).describe()}")
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Adds ``models``."""
    models = commands.add_parser(
        "models", help="list a study's model versions, activate one, roll back, or add packages trained elsewhere")
    models.add_argument("study", type=Path, help="a study (or its models folder)")
    models.add_argument("action", nargs="?", choices=["list", "activate", "rollback", "add"], default="list")
    models.add_argument("model_id", nargs="?", help="the version to activate, or the id of the version to add")
    models.add_argument("--detector", type=Path, help="add: a detector package trained elsewhere")
    models.add_argument("--classifier", type=Path, help="add: a classifier package trained elsewhere")
    models.add_argument("--activate", action="store_true", help="add: activate the new version at once")
    models.set_defaults(func=cmd_models)
