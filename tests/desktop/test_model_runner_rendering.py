"""The app's model runner hands the networks the same bytes as training and ``diagnose``, whatever window the study
was imported with (tests/core/test_rendering.py checks training against ``diagnose`` for each rendering)."""

from __future__ import annotations

import numpy as np

from core.imaging.dicom import read_dicom
from core.imaging.rendering import model_view
from core.review.models import ModelLink
from core.training.classification_data import SliceCache
from core.training.datasets import study_records
from desktop.review.model_runner import ModelRunner
from tests.core.rendering_helpers import IMPORT_WINDOWS, NetworkInputs, import_slice, model_set_with_rendering


def test_the_app_feeds_the_model_what_it_learnt_from(qtbot, tiny_model_study, dicom_series_files, tmp_path,
                                                     monkeypatch):
    source = dicom_series_files[len(dicom_series_files) // 2]
    rendering = "bone"  # not the default, so a runner that ignored the package's rendering would be caught
    models = model_set_with_rendering(tiny_model_study, tmp_path / "set", rendering)
    runner = ModelRunner()
    with qtbot.waitSignal(runner.stateChanged, check_params_cb=lambda state, _: state == "ready", timeout=60_000):
        runner.attach(ModelLink("tiny-v1", models))
    expected = model_view(read_dicom(source)[0], rendering)
    for window in IMPORT_WINDOWS:
        study, case, slice_id = import_slice(source, tmp_path / f"study-{window}", window)
        qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
        seen = NetworkInputs().install(monkeypatch)
        with qtbot.waitSignal(runner.finished, timeout=60_000) as finished:
            assert runner.run(study, [(case, slice_id)])
        report, keys = finished.args
        assert keys == [(case, slice_id)] and report.slices == 1 and not report.errors
        records, _ = study_records(study.root)
        assert np.array_equal(seen.only(), SliceCache(rendering).image(records[0])), window
        assert np.array_equal(seen.only(), expected), window
        monkeypatch.undo()
