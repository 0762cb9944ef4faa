"""Argument types and help texts that more than one command uses. Imports nothing of the command line's."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

RENDERING_HELP = ("how slices become the model's input, recorded in the package and used wherever it runs: min-max "
                  "(default, the paper's export), bone, soft, dicom or CENTER,WIDTH; images without HU are used as "
                  "they are")


def rendering_arg(text: str) -> str:
    """An argparse type: a rendering (window) spec, refused with its choices otherwise."""
    from core.imaging.rendering import check_rendering

    try:
        return check_rendering(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, refused with the range otherwise, so a bad count or
    size is named at once and not by the training or the network that chokes on it."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} must be from {low} to {high}")
        return value

    parse.__name__ = "whole number"  # what argparse calls the type in its message
    return parse


def number(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` (above it, with ``low_open``) to ``high``."""
    span = f"above {low:g} and up to {high:g}" if low_open else f"from {low:g} to {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{text} must be a number {span}")
        return value

    parse.__name__ = "number"
    return parse


#: The training options ``train`` and ``retrain`` share.
EPOCHS = whole(1, 1000)
BATCH_SIZE = whole(1, 512)
LEARNING_RATE = number(0, 10, low_open=True)


def check_studies(*groups: Sequence[Path] | None) -> None:
    """Open every study named (raises the first one's problem), before a command loads PyTorch to train on them."""
    from core.study.layout import Study

    for group in groups:
        for root in group or ():
            Study.open(root)


def prevalence(text: str) -> dict:
    """``--prevalence CODE=RATE,...``: the paper's rates with these changed."""
    from core.annotations.model import Disease
    from core.synthetic.diseases import PAPER_PREVALENCE

    rates = dict(PAPER_PREVALENCE)
    for item in filter(None, (part.strip() for part in text.split(","))):
        code, _, value = item.partition("=")
        try:
            rates[Disease(code.strip().upper())] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: use CODE=RATE, for example OVCF=0.2,SN=0.05") from None
    return rates


def anatomy_source(text: str):
    """``--anatomy PATH[:verse|:totalsegmentator]``."""
    from core.synthetic.anatomy_study import AnatomySource

    for scheme in ("verse", "totalsegmentator"):
        if text.endswith(f":{scheme}"):
            return AnatomySource(Path(text[: -len(scheme) - 1]), scheme)
    return AnatomySource(Path(text))


# -- help filled in from the training presets ------------------------------------------------------------------------
def from_presets(parser: argparse.ArgumentParser, fields: Callable[[], Mapping[str, Any]]) -> None:
    """Make the help of ``parser``'s options a template (``"(default {paper.size})"``), filled in with ``fields()``
    when the help is shown. The presets live beside the training code, which loads PyTorch, so the parser, which
    every command builds, reads them only for ``--help``, and the help never repeats a number that could drift."""
    parser.formatter_class = PresetHelpFormatter
    for action in parser._actions:
        if action.help and "{" in action.help:
            action.preset_fields = fields  # type: ignore[attr-defined]


class PresetHelpFormatter(argparse.HelpFormatter):
    """Fills in the help templates marked by :func:`from_presets`."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        fields = getattr(action, "preset_fields", None)
        return text.format(**fields()) if text and fields else text
