"""``train detector --help`` and ``train classifier --help`` describe the presets from the preset objects, so the help
names what a preset really does, and changing a preset changes its help."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.training import classification_engine, detection_engine
from desktop.cli.main import build_parser


def help_text(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """The command's ``--help``, with argparse's line wrapping undone."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_detector_help_names_each_presets_values_and_follows_a_change(monkeypatch, capsys):
    text = help_text(capsys, "train", "detector")
    for name, p in detection_engine.PRESETS.items():
        assert f"{name}: {p.size} px, " in text
        assert f"lr {p.lr:g}, batch {p.batch_size}, {p.epochs} epochs" in text
    paper = detection_engine.PRESETS["paper"]
    assert f"width of the feature pyramid (default {paper.fpn_channels})" in text
    assert f"multiplied by {detection_engine.LR_DROP_FACTOR:g}" in text

    changed = replace(detection_engine.PRESETS["cpu"], size=384, lr=0.02, batch_size=3, epochs=7, fpn_channels=96,
                      box_representation=192, augment="flip")
    monkeypatch.setitem(detection_engine.PRESETS, "cpu", changed)
    monkeypatch.setitem(detection_engine.PRESETS, "paper", replace(paper, fpn_channels=320))
    text = help_text(capsys, "train", "detector")
    assert "cpu: 384 px, compact heads (pyramid 96, box head 192), lr 0.02, batch 3, 7 epochs, flips" in text
    assert "width of the feature pyramid (default 320)" in text


def test_classifier_help_names_each_presets_values_and_follows_a_change(monkeypatch, capsys):
    text = help_text(capsys, "train", "classifier")
    for name, p in classification_engine.PRESETS.items():
        assert (f"{name}: {p.arch.replace('resnet', 'ResNet')} at {p.size} px, lr {p.lr:g} x{p.lr_gamma:g} every "
                f"{p.lr_step} epochs, {p.epochs} epochs, batch {p.batch_size}, {p.patches_per_box} patches per box"
                in text)

    changed = replace(classification_engine.PRESETS["cpu"], arch="resnet34", size=96, lr=0.005, lr_gamma=0.5,
                      lr_step=3, epochs=6, batch_size=32, patches_per_box=3)
    monkeypatch.setitem(classification_engine.PRESETS, "cpu", changed)
    monkeypatch.setitem(classification_engine.PRESETS, "paper",
                        replace(classification_engine.PRESETS["paper"], canvas=200, endplate_steps=250))
    text = help_text(capsys, "train", "classifier")
    assert ("cpu: ResNet34 at 96 px, lr 0.005 x0.5 every 3 epochs, 6 epochs, batch 32, 3 patches per box" in text)
    assert "(default 200)" in text and "training steps of the endplate head (default 250)" in text


@pytest.mark.parametrize("engine", [detection_engine, classification_engine])
def test_the_preset_choices_are_the_presets(engine):
    """The parser offers the presets by name without loading PyTorch, so the names are written down: kept equal."""
    from desktop.cli.train import PRESET_NAMES

    assert list(PRESET_NAMES) == list(engine.PRESETS)
