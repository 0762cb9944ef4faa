"""The detector's photometric jitter (core.training.transforms.AppearanceJitter): each effect does what it says and
stays in its range, the boxes never move, and a seed gives the same draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.imaging.letterbox import InputGeometry
from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study
from core.training.datasets import DetectionDataset, study_records
from core.training.detection_engine import DetectorTraining, train_detector
from core.training.transforms import AppearanceJitter

#: Every effect at its identity: a test turns one of them on.
IDENTITY = AppearanceJitter(probability=1.0, resolution=(1.0, 1.0), blur_px=(0.0, 0.0), sharpen=(0.0, 0.0),
                            white=(1.0, 1.0), black=(0.0, 0.0), gamma=(1.0, 1.0), noise=(0.0, 0.0))
SEEDS = range(24)


def _ramp(height: int = 64, width: int = 48) -> np.ndarray:
    return np.tile(np.linspace(0, 255, width), (height, 1)).round().astype(np.uint8)


def _outputs(jitter: AppearanceJitter, image: np.ndarray) -> list[np.ndarray]:
    return [jitter(image, np.random.default_rng(seed)) for seed in SEEDS]


def test_identity_settings_change_nothing_and_keep_shape_and_type():
    image = (np.random.default_rng(0).random((37, 53)) * 255).astype(np.uint8)
    for out in _outputs(IDENTITY, image):
        assert out.dtype == np.uint8 and out.shape == image.shape
        np.testing.assert_array_equal(out, image)


def test_probability_zero_never_jitters_and_the_default_usually_does():
    image = (np.random.default_rng(1).random((40, 40)) * 255).astype(np.uint8)
    assert all(np.array_equal(o, image) for o in _outputs(AppearanceJitter(probability=0.0), image))
    changed = sum(not np.array_equal(o, image) for o in _outputs(AppearanceJitter(), image))
    assert changed >= len(SEEDS) // 2  # 0.8 of the samples, less the few that draw no effect at all


def test_a_seed_gives_the_same_jitter_and_another_seed_another():
    image = _ramp()
    jitter = AppearanceJitter(probability=1.0)
    np.testing.assert_array_equal(jitter(image, np.random.default_rng(5)), jitter(image, np.random.default_rng(5)))
    assert len({jitter(image, np.random.default_rng(s)).tobytes() for s in SEEDS}) > len(SEEDS) // 2


def test_the_white_point_darkens_within_its_range():
    from dataclasses import replace

    image = _ramp()
    outputs = _outputs(replace(IDENTITY, white=(0.5, 0.6)), image)
    darkened = [o for o in outputs if not np.array_equal(o, image)]
    assert darkened, "the white point never drawn in 24 samples"
    for out in darkened:
        assert 0.5 * 255 - 1 <= out.max() <= 0.6 * 255 + 1


def test_the_black_point_sends_the_darkest_greys_to_black():
    from dataclasses import replace

    image = _ramp()
    outputs = _outputs(replace(IDENTITY, black=(0.1, 0.1)), image)
    raised = [o for o in outputs if not np.array_equal(o, image)]
    assert raised
    for out in raised:
        assert np.all(out[image <= 25] == 0) and out.max() == 255


def test_gamma_bends_the_greys_and_keeps_black_and_white():
    from dataclasses import replace

    image = _ramp()
    expected = np.rint(255 * (image / 255.0) ** 2.0).astype(np.uint8)
    outputs = _outputs(replace(IDENTITY, gamma=(2.0, 2.0)), image)
    bent = [o for o in outputs if not np.array_equal(o, image)]
    assert bent
    for out in bent:
        assert np.abs(out.astype(int) - expected).max() <= 1


def test_noise_has_its_drawn_spread():
    from dataclasses import replace

    image = np.full((128, 128), 128, dtype=np.uint8)
    outputs = _outputs(replace(IDENTITY, noise=(4.0, 8.0)), image)
    noisy = [o for o in outputs if not np.array_equal(o, image)]
    assert noisy
    for out in noisy:
        assert 3.5 <= (out.astype(float) - 128).std() <= 8.5


def test_resolution_loss_and_blur_remove_fine_detail_and_sharpening_adds_it():
    from dataclasses import replace

    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 200 + 20).astype(np.uint8)
    for settings in (replace(IDENTITY, resolution=(2.0, 2.0)), replace(IDENTITY, blur_px=(1.0, 1.0))):
        changed = [o for o in _outputs(settings, checker) if not np.array_equal(o, checker)]
        assert changed
        for out in changed:
            assert np.abs(np.diff(out.astype(float), axis=1)).mean() < 0.5 * np.abs(np.diff(checker.astype(float),
                                                                                              axis=1)).mean()
    edge = np.zeros((32, 32), dtype=np.uint8)
    edge[:, 16:] = 100
    sharpened = [o for o in _outputs(replace(IDENTITY, sharpen=(1.0, 1.0)), edge) if not np.array_equal(o, edge)]
    assert sharpened
    for out in sharpened:
        assert out[:, 16].max() > 100 and out[:, 15].min() == 0  # an overshoot beside the edge


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jitter") / "study"
    run(generate_study(root, SynthOptions(cases=1, seed=8, slices_per_case=2, readers=0)))
    return root


def test_the_dataset_jitters_the_pixels_but_never_moves_the_boxes(small_study):
    records, _ = study_records(small_study)
    geometry = InputGeometry(1024, 128)
    plain = DetectionDataset(records, geometry, "d4-random")
    jittered = DetectionDataset(records, geometry, "d4-random", appearance=AppearanceJitter(probability=1.0))
    differs = 0
    for index in range(len(records)):
        for seed in range(4):
            torch.manual_seed(seed)
            image, boxes, k = plain.sample(index)
            torch.manual_seed(seed)
            image_j, boxes_j, k_j = jittered.sample(index)
            assert k == k_j
            np.testing.assert_array_equal(boxes, boxes_j)
            differs += not np.array_equal(image, image_j)
            torch.manual_seed(seed)
            np.testing.assert_array_equal(jittered.sample(index)[0], image_j)  # the torch seed fixes the jitter
    assert differs >= 6


def test_training_with_appearance_records_it_in_the_package(small_study, tmp_path):
    from core.models.package import read_manifest

    settings = DetectorTraining(backbone="resnet18", size=64, epochs=1, batch_size=2, warmup_steps=1, augment="none",
                                appearance=True, precision="fp32", fpn_channels=16, box_representation=16)
    result = run(train_detector([small_study], tmp_path, settings, validation=[small_study], model_id="j"))
    manifest = read_manifest(result.package, kind="detector")
    assert manifest.training["settings"]["appearance"] is True


def test_the_classifier_patches_take_the_same_jitter_when_asked():
    from dataclasses import replace

    from core.training.classification_data import Augmentation

    still = dict(degrees=0.0, translate=0.0, noise=0.0, brightness=0.0, contrast=0.0)
    patches = torch.linspace(0, 1, 32).repeat(6, 1, 32, 1)  # (6, 1, 32, 32) ramps
    plain = Augmentation(**still).apply(patches.clone(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(plain, patches)
    squared = Augmentation(**still, appearance=replace(IDENTITY, gamma=(2.0, 2.0)))
    first = squared.apply(patches.clone(), torch.Generator().manual_seed(0))
    torch.testing.assert_close(first, squared.apply(patches.clone(), torch.Generator().manual_seed(0)))
    assert first.shape == patches.shape and first.dtype == patches.dtype
    bent = [i for i in range(len(first)) if not torch.allclose(first[i], patches[i])]
    assert bent, "no patch jittered in six"
    for i in bent:
        torch.testing.assert_close(first[i], patches[i] ** 2, atol=1e-5, rtol=0)


def _neighbour_correlation(noise: np.ndarray) -> float:
    centred = noise - noise.mean()
    return float((centred[:, 1:] * centred[:, :-1]).mean() / centred.var())


def test_correlated_noise_has_unit_spread_and_its_grain():
    from core.training.transforms import correlated_noise

    rng = np.random.default_rng(0)
    white = correlated_noise((128, 128), 0.0, rng)
    assert white.dtype == np.float32 and abs(white.std() - 1.0) < 0.05
    assert abs(_neighbour_correlation(white)) < 0.05
    grains = [_neighbour_correlation(correlated_noise((128, 128), g, rng)) for g in (0.7, 1.5, 3.0)]
    for grain in (0.7, 1.5, 3.0):
        assert abs(correlated_noise((128, 128), grain, rng).std() - 1.0) < 1e-3
    assert 0.3 < grains[0] < grains[1] < grains[2] < 1.0  # a coarser grain, closer neighbours


def test_noise_with_a_grain_keeps_its_drawn_spread_and_is_blotchy():
    from dataclasses import replace

    image = np.full((128, 128), 128, dtype=np.uint8)
    outputs = _outputs(replace(IDENTITY, noise=(6.0, 6.0), grain_px=(1.5, 1.5)), image)
    noisy = [o for o in outputs if not np.array_equal(o, image)]
    assert noisy
    for out in noisy:
        assert 5.0 <= (out.astype(float) - 128).std() <= 7.0
        assert _neighbour_correlation(out.astype(float)) > 0.6


def test_the_scale_enlarges_every_spatial_effect():
    from dataclasses import replace

    image = np.full((128, 128), 128, dtype=np.uint8)
    for scale in (1.0, 3.0):
        settings = replace(IDENTITY, noise=(8.0, 8.0), grain_px=(0.5, 0.5), scale=(scale, scale))
        noisy = [o for o in _outputs(settings, image) if not np.array_equal(o, image)]
        assert noisy
        correlation = np.mean([_neighbour_correlation(o.astype(float)) for o in noisy])
        assert (correlation < 0.5) if scale == 1.0 else (correlation > 0.8)
    checker = ((np.indices((64, 64)).sum(axis=0) // 4 % 2) * 200 + 20).astype(np.uint8)  # 4-pixel squares

    def detail(settings: AppearanceJitter) -> float:
        changed = [o for o in _outputs(settings, checker) if not np.array_equal(o, checker)]
        assert changed
        return float(np.mean([np.abs(np.diff(o.astype(float), axis=1)).mean() for o in changed]))

    for effect in (dict(blur_px=(1.0, 1.0)), dict(resolution=(2.0, 2.0))):
        assert detail(replace(IDENTITY, **effect, scale=(3.0, 3.0))) < 0.6 * detail(replace(IDENTITY, **effect))


def test_a_fixed_setting_draws_nothing_so_adding_one_keeps_the_other_draws():
    from dataclasses import replace

    image = _ramp()
    jitter = AppearanceJitter(probability=1.0)
    explicit = replace(jitter, grain_px=(0.0, 0.0), scale=(1.0, 1.0))
    for seed in SEEDS:
        np.testing.assert_array_equal(jitter(image, np.random.default_rng(seed)),
                                      explicit(image, np.random.default_rng(seed)))


def test_the_classifier_s_coarse_jitter_is_blotchy_and_its_fine_one_is_the_detector_s():
    from core.training.classification_data import APPEARANCE_GRAIN

    assert APPEARANCE_GRAIN["fine"] == AppearanceJitter()  # the bundled classifiers' training, unchanged
    coarse = APPEARANCE_GRAIN["coarse"]
    low, high = coarse.scale
    assert 1.0 < low < high and coarse.grain_px[0] > 0
    image = np.full((128, 128), 128, dtype=np.uint8)
    noisy = [o for o in _outputs(replace_noise_only(coarse), image) if not np.array_equal(o, image)]
    assert noisy and min(_neighbour_correlation(o.astype(float)) for o in noisy) > 0.5
    flat = [o for o in _outputs(replace_noise_only(APPEARANCE_GRAIN["fine"]), image) if not np.array_equal(o, image)]
    assert flat and max(abs(_neighbour_correlation(o.astype(float))) for o in flat) < 0.1  # white noise


def replace_noise_only(jitter: AppearanceJitter) -> AppearanceJitter:
    """``jitter`` with every effect but its noise (SD 8) at the identity."""
    from dataclasses import replace

    return replace(IDENTITY, noise=(8.0, 8.0), grain_px=jitter.grain_px, scale=jitter.scale)
