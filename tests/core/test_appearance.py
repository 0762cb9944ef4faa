"""The appearance step of the anatomy phantom: every randomisation does what it says (issue 17)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.synthetic.appearance import (
    FOV_SPINE_MARGIN_MM,
    HU_MAX,
    HU_MIN,
    Appearance,
    AppearanceRangeError,
    AppearanceRanges,
    apply_appearance,
    draw_appearance,
    render_hu,
)
from core.synthetic.distractors import DISTRACTORS
from core.synthetic.random_fields import smooth_field
from core.synthetic.slab import TISSUE, TISSUES, AnatomySlab, SlabBody

PLAIN = AppearanceRanges().without_perturbations()
OPTIONS = ("enhanced", "oral_contrast", "osteoporotic")
SEEDS = range(6)


def _slab(labels: np.ndarray, pixel_mm: float = 0.5, bodies: tuple[SlabBody, ...] = ()) -> AnatomySlab:
    """A slab whose pixels are each wholly the tissue of ``labels`` (indices of TISSUES)."""
    fractions = np.zeros((len(TISSUES), *labels.shape), dtype=np.float32)
    np.put_along_axis(fractions, labels[None].astype(np.intp), 1.0, axis=0)
    return AnatomySlab(fractions, bodies, pixel_mm)


def _pure(name: str, size: int = 16) -> AnatomySlab:
    return _slab(np.full((size, size), TISSUE[name]))


def _spine(size: int = 128, pixel_mm: float = 0.8) -> AnatomySlab:
    """Soft tissue in fat in air; lung above and bowel below in front (left), the aorta (blood) just in front of a
    column of vertebral bodies (cancellous) and discs, the canal and the posterior elements behind them."""
    n = size
    yy, xx = np.mgrid[0:n, 0:n]
    labels = np.full((n, n), TISSUE["air"])
    labels[((yy - n / 2) / (0.55 * n)) ** 2 + ((xx - n / 2) / (0.45 * n)) ** 2 < 1] = TISSUE["fat"]
    labels[((yy - n / 2) / (0.5 * n)) ** 2 + ((xx - n / 2) / (0.4 * n)) ** 2 < 1] = TISSUE["soft"]
    front = (xx > 0.2 * n) & (xx < 0.42 * n)
    labels[front & (yy < 0.4 * n)] = TISSUE["lung"]
    labels[front & (yy > 0.55 * n) & (yy < 0.85 * n)] = TISSUE["bowel"]
    labels[(xx >= int(0.45 * n)) & (xx < int(0.5 * n))] = TISSUE["blood"]
    x0, x1 = int(0.52 * n), int(0.64 * n)
    labels[:, x1 + n // 50 : x1 + n // 20] = TISSUE["canal"]
    labels[:, x1 + n // 20 : x1 + n // 8] = TISSUE["posterior"]
    bodies, step = [], n // 8
    for number, top in enumerate(range(2, n - step, step)):
        labels[top : top + step * 3 // 4, x0:x1] = TISSUE["cancellous"]
        labels[top + step * 3 // 4 : top + step, x0:x1] = TISSUE["disc"]
        fraction = np.zeros((n, n), dtype=np.float32)
        fraction[top : top + step * 3 // 4, x0:x1] = 1.0
        bodies.append(SlabBody(f"L{number + 1}", fraction))
    return _slab(labels, pixel_mm, tuple(bodies))


def _rendered(slab: AnatomySlab, seed: int, ranges: AppearanceRanges) -> tuple[np.ndarray, Appearance]:
    rng = np.random.default_rng(seed)
    look = draw_appearance(rng, ranges)
    return apply_appearance(slab, look, rng, ranges), look


def _options(on: bool) -> dict[str, float]:
    return {f"{name}_probability": float(on) for name in OPTIONS}


# The ranges


def test_bad_ranges_are_refused_with_a_typed_error():
    with pytest.raises(AppearanceRangeError, match="fat_hu"):
        AppearanceRanges(fat_hu=(-60.0, -120.0))
    with pytest.raises(AppearanceRangeError, match="metal_probability"):
        AppearanceRanges(metal_probability=1.5)
    with pytest.raises(AppearanceRangeError, match="bone marrow"):
        AppearanceRanges(within_sd_hu={"bone marrow": (0.0, 10.0)})


@pytest.mark.parametrize("name", TISSUES)
@pytest.mark.parametrize("options", [False, True], ids=["plain", "enhanced-oral-osteoporotic"])
def test_a_pure_tissue_lies_in_its_range(name, options):
    ranges = replace(PLAIN, **_options(options))
    low, high = ranges.tissue_hu(name, **dict.fromkeys(OPTIONS, options))
    for seed in SEEDS:
        hu = render_hu(_pure(name), np.random.default_rng(seed), ranges)
        assert np.ptp(hu) == 0
        assert low - 1e-3 <= hu[0, 0] <= min(high, HU_MAX) + 1e-3


def test_tissue_means_are_drawn_over_their_whole_range():
    for name in ("fat", "cancellous", "blood"):
        low, high = PLAIN.tissue_hu(name)
        means = [draw_appearance(np.random.default_rng(seed), PLAIN).tissue_hu[TISSUE[name]] for seed in range(60)]
        plain = [mean for mean in means if low <= mean <= high]
        assert min(plain) < low + 0.2 * (high - low) and max(plain) > high - 0.2 * (high - low)


def test_every_drawn_parameter_lies_in_its_range():
    ranges = AppearanceRanges()
    for seed in range(40):
        look = draw_appearance(np.random.default_rng(seed), ranges)
        for name in ("within_mm", "body_sd_hu", "shell_hu", "shell_mm", "texture_hu", "texture_mm", "blur_px",
                     "bias_multiplicative", "bias_additive_hu", "sharp_px", "noise_hu", "noise_grain_px"):  # fmt: skip
            low, high = getattr(ranges, name)
            assert low <= getattr(look, name) <= high, name
        assert look.gamma == 1.0 or ranges.gamma[0] <= look.gamma <= ranges.gamma[1]
        assert look.sharp_amount == 0.0 or ranges.sharp_amount[0] <= look.sharp_amount <= ranges.sharp_amount[1]
        for tissue, sd in zip(TISSUES, look.within_sd_hu, strict=True):
            assert ranges.within_sd_hu[tissue][0] <= sd <= ranges.within_sd_hu[tissue][1]
        assert look.distractors <= set(DISTRACTORS)
        if look.fov_padding_hu is None:
            assert look.fov_cut == (0.0, 0.0)
        else:
            assert ranges.fov_padding_hu[0] <= look.fov_padding_hu <= ranges.fov_padding_hu[1]
            assert all(ranges.fov_cut[0] <= cut <= ranges.fov_cut[1] for cut in look.fov_cut)


def test_mean_intensities_follow_the_anatomy_on_average():
    looks = [draw_appearance(np.random.default_rng(seed)) for seed in range(300)]
    mean = {name: np.mean([look.tissue_hu[TISSUE[name]] for look in looks]) for name in TISSUES}
    assert mean["cancellous"] > mean["soft"] > mean["fat"] > mean["lung"] > mean["air"]
    assert np.mean([look.shell_hu for look in looks]) > mean["cancellous"]
    assert mean["metal"] > mean["cement"] > mean["posterior"] > mean["disc"] > mean["canal"]


def test_options_and_distractors_follow_their_probabilities():
    ranges = replace(AppearanceRanges(), enhanced_probability=0.3, metal_probability=0.3, gas_probability=0.0)
    looks = [draw_appearance(np.random.default_rng(seed), ranges) for seed in range(400)]
    assert abs(np.mean([look.enhanced for look in looks]) - 0.3) < 0.08
    assert abs(np.mean(["metal" in look.distractors for look in looks]) - 0.3) < 0.08
    assert not any("gas" in look.distractors for look in looks)


# Partial volume, shell and texture


def test_partial_volume_is_the_fraction_weighted_mean():
    slab = _slab(np.full((8, 8), TISSUE["soft"]))
    slab.fractions[TISSUE["soft"], :, 3] = 0.5
    slab.fractions[TISSUE["fat"], :, 3] = 0.5
    slab.fractions[TISSUE["soft"], :, 5] = 0.75
    slab.fractions[TISSUE["fat"], :, 5] = 0.25
    for seed in SEEDS:
        hu, look = _rendered(slab, seed, PLAIN)
        fat, soft = look.tissue_hu[TISSUE["fat"]], look.tissue_hu[TISSUE["soft"]]
        assert fat < hu[0, 3] < soft
        np.testing.assert_allclose(hu[:, 3], 0.5 * fat + 0.5 * soft, atol=1e-3)
        np.testing.assert_allclose(hu[:, 5], 0.25 * fat + 0.75 * soft, atol=1e-3)


def _shell_ranges(shell_mm: float) -> AppearanceRanges:
    return replace(
        PLAIN, **_options(False), shell_mm=(shell_mm, shell_mm), shell_hu=(1000.0, 1000.0),
        cancellous_hu=(200.0, 200.0), soft_hu=(40.0, 40.0), disc_hu=(100.0, 100.0), posterior_hu=(600.0, 600.0),
        cement_hu=(2000.0, 2000.0),
    )  # fmt: skip


def test_the_cortical_shell_lines_the_bone_edge_and_not_its_inside():
    labels = np.full((64, 64), TISSUE["soft"])
    labels[16:48, 16:48] = TISSUE["cancellous"]
    labels[28:36, 28:36] = TISSUE["cement"]  # cement inside a body: no shell around it
    hu = render_hu(_slab(labels, pixel_mm=0.5), np.random.default_rng(0), _shell_ranges(1.0))  # 2 px
    band = np.zeros((64, 64), dtype=bool)
    band[16:48, 16:48] = True
    band[18:46, 18:46] = False
    assert np.all(hu[band] == 1000.0)
    inside = np.zeros((64, 64), dtype=bool)
    inside[18:46, 18:46] = True
    inside[28:36, 28:36] = False
    assert np.all(hu[inside] == 200.0)
    assert np.all(hu[28:36, 28:36] == 2000.0)
    assert np.all(hu[labels == TISSUE["soft"]] == 40.0)


def test_endplates_are_the_shell_where_a_body_meets_a_disc_and_none_lines_bone_against_bone():
    labels = np.full((60, 40), TISSUE["soft"])
    labels[0:30, 5:25] = TISSUE["cancellous"]  # reaches the image's top edge: no shell there
    labels[30:40, 5:25] = TISSUE["disc"]
    labels[0:40, 25:35] = TISSUE["posterior"]
    hu = render_hu(_slab(labels, pixel_mm=0.5), np.random.default_rng(0), _shell_ranges(1.0))
    assert np.all(hu[28:30, 7:25] == 1000.0)  # the endplate
    assert np.all(hu[2:28, 7:25] == 200.0)  # no shell at the top edge of the image nor against the posterior bone
    assert np.all(hu[30:40, 5:25] == 100.0)
    assert np.all(hu[0:28, 27:33] == 600.0)


def test_the_shell_is_as_wide_as_drawn_with_partial_pixels():
    labels = np.full((40, 60), TISSUE["soft"])
    labels[:, 20:] = TISSUE["cancellous"]
    slab = _slab(labels, pixel_mm=0.4)
    ranges = replace(_shell_ranges(1.0), shell_mm=AppearanceRanges().shell_mm)
    for seed in range(10):
        hu, look = _rendered(slab, seed, ranges)
        shell = (hu[20, 20:] - 200.0) / (look.shell_hu - 200.0)  # the share of each pixel that is shell
        assert 0.5 <= look.shell_mm <= 2.0
        assert shell.sum() * slab.pixel_mm == pytest.approx(look.shell_mm, rel=1e-4)


def _textured(slab: AnatomySlab, texture_mm: float, seed: int = 0) -> np.ndarray:
    ranges = replace(_shell_ranges(1.0), texture_hu=(60.0, 60.0), texture_mm=(texture_mm, texture_mm))
    plain = replace(ranges, texture_hu=(0.0, 0.0))
    return render_hu(slab, np.random.default_rng(seed), ranges) - render_hu(slab, np.random.default_rng(seed), plain)


def test_the_trabecular_texture_is_only_in_the_cancellous_bone_inside_the_shell():
    labels = np.full((64, 64), TISSUE["soft"])
    labels[8:40, 8:40] = TISSUE["cancellous"]
    labels[40:48, 8:40] = TISSUE["disc"]
    labels[8:48, 40:56] = TISSUE["posterior"]
    labels[50:60, 8:56] = TISSUE["bone"]
    change = _textured(_slab(labels, pixel_mm=0.5), 1.0)
    core = np.zeros((64, 64), dtype=bool)
    core[10:38, 10:40] = True  # the cancellous bone less its 2-px shell (none against the posterior bone)
    assert np.all(change[~core] == 0.0)
    assert np.std(change[core]) == pytest.approx(60.0, rel=0.25)


def test_the_trabecular_texture_is_coarser_at_a_larger_scale():
    slab = _pure("cancellous", 96)

    def lag_one(change: np.ndarray) -> float:
        return float(np.corrcoef(change[:, :-1].ravel(), change[:, 1:].ravel())[0, 1])

    fine, coarse = lag_one(_textured(slab, 0.5)), lag_one(_textured(slab, 2.0))
    assert coarse > fine + 0.2


def test_within_tissue_variation_and_body_offsets():
    ranges = replace(PLAIN, within_sd_hu={**dict.fromkeys(TISSUES, (0.0, 0.0)), "soft": (20.0, 20.0)})
    spread = [np.std(render_hu(_pure("soft", 128), np.random.default_rng(seed), ranges)) for seed in SEEDS]
    assert 10.0 < np.mean(spread) < 25.0
    slab = _spine()
    hu = render_hu(slab, np.random.default_rng(1), replace(PLAIN, body_sd_hu=(40.0, 40.0), shell_mm=(0.0, 0.0)))
    body_means = [float(hu[body.fraction > 0].mean()) for body in slab.bodies]
    assert np.ptp(body_means) > 10.0
    flat = render_hu(slab, np.random.default_rng(1), replace(PLAIN, shell_mm=(0.0, 0.0)))
    assert np.ptp([float(flat[body.fraction > 0].mean()) for body in slab.bodies]) < 1e-3


def test_smooth_fields_have_unit_variance_and_vary_over_their_scale():
    fields = [smooth_field((256, 256), scale, np.random.default_rng(int(scale))) for scale in (3.0, 12.0)]
    assert [np.std(field) for field in fields] == pytest.approx([1.0, 1.0], rel=0.15)
    fine, coarse = (_lag_one(field[:, ::3]) for field in fields)
    assert 0.2 < fine < coarse < 1.0


# Bias, gamma, kernel, noise


def test_the_bias_field_is_bounded_by_its_amplitude_and_smooth():
    ranges = replace(PLAIN, soft_hu=(40.0, 40.0), bias_multiplicative=(0.05, 0.05), bias_additive_hu=(30.0, 30.0))
    bound = 0.05 * (40.0 + 1000.0) + 30.0
    for seed in SEEDS:
        deviation = render_hu(_pure("soft", 96), np.random.default_rng(seed), ranges) - 40.0
        assert np.abs(deviation).max() <= bound + 1e-2
        assert np.abs(deviation).max() > 0.3 * bound
        assert np.abs(np.diff(deviation, axis=0)).max() < 0.15 * bound


def test_gamma_changes_contrast_but_not_the_order_of_tissues():
    labels = np.repeat(np.array([TISSUE["fat"], TISSUE["soft"], TISSUE["cancellous"], TISSUE["posterior"]]), 8)
    slab = _slab(np.tile(labels, (8, 1)))
    means = {**_options(False), "fat_hu": (-100.0, -100.0), "soft_hu": (40.0, 40.0), "cancellous_hu": (200.0, 200.0)}
    straight = render_hu(slab, np.random.default_rng(0), replace(PLAIN, **means, posterior_hu=(600.0, 600.0)))
    ranges = replace(PLAIN, **means, posterior_hu=(600.0, 600.0), gamma_probability=1.0, gamma=(0.7, 0.7))
    bent = render_hu(slab, np.random.default_rng(0), ranges)
    expected = ((np.maximum(straight + 1000.0, 0.0) / 3000.0) ** 0.7) * 3000.0 - 1000.0
    np.testing.assert_allclose(bent, expected, rtol=1e-4, atol=1e-2)
    fat, soft, cancellous, posterior = bent[0, 4::8]
    assert fat < soft < cancellous < posterior
    assert abs((soft - fat) / (posterior - cancellous) / (140.0 / 400.0) - 1.0) > 0.1


def _line_slab() -> AnatomySlab:
    labels = np.full((16, 41), TISSUE["soft"])
    labels[:, 20] = TISSUE["metal"]
    return _slab(labels)


def _line_spread(profile: np.ndarray) -> float:
    """The standard deviation (pixels) of a line's blurred profile over a flat background."""
    weights = profile - profile[0]
    offsets = np.arange(profile.size) - 20
    return float(np.sqrt(np.sum(weights * offsets**2) / np.sum(weights)))


def _high_frequency(hu: np.ndarray) -> float:
    return float(np.sum(np.diff(hu, axis=1) ** 2))


def test_the_kernel_blurs_by_its_sigma_and_reduces_high_frequencies():
    flat = replace(PLAIN, soft_hu=(40.0, 40.0), metal_hu=(1040.0, 1040.0))
    sharp = render_hu(_line_slab(), np.random.default_rng(0), flat)
    for sigma in (0.3, 0.7, 1.2):
        hu = render_hu(_line_slab(), np.random.default_rng(0), replace(flat, blur_px=(sigma, sigma)))
        assert _line_spread(hu[8]) == pytest.approx(sigma, rel=1e-3)
        assert _high_frequency(hu) < _high_frequency(sharp)
    for seed in SEEDS:
        hu, look = _rendered(_line_slab(), seed, replace(flat, blur_px=AppearanceRanges().blur_px))
        assert 0.3 <= _line_spread(hu[8]) <= 1.2
        assert _line_spread(hu[8]) == pytest.approx(look.blur_px, rel=1e-3)


def test_a_sharp_kernel_overshoots_at_edges():
    labels = np.full((16, 40), TISSUE["soft"])
    labels[:, 20:] = TISSUE["posterior"]
    flat = replace(PLAIN, soft_hu=(40.0, 40.0), posterior_hu=(640.0, 640.0), blur_px=(0.5, 0.5), shell_mm=(0.0, 0.0))
    smooth = render_hu(_slab(labels), np.random.default_rng(0), flat)
    sharp = render_hu(
        _slab(labels), np.random.default_rng(0), replace(flat, sharp_probability=1.0, sharp_amount=(0.8, 0.8))
    )
    assert smooth.max() <= 640.0 + 1e-3 and smooth.min() >= 40.0 - 1e-3
    assert sharp.max() > 660.0 and sharp.min() < 20.0
    assert _high_frequency(sharp) > _high_frequency(smooth)


def _lag_one(noise: np.ndarray) -> float:
    return float(np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1])


def test_noise_has_the_drawn_sigma_within_its_range():
    ranges = replace(PLAIN, soft_hu=(40.0, 40.0), noise_hu=AppearanceRanges().noise_hu)
    for seed in SEEDS:
        hu, look = _rendered(_pure("soft", 256), seed, ranges)
        assert 5.0 <= look.noise_hu <= 60.0
        assert np.std(hu) == pytest.approx(look.noise_hu, rel=0.06)
        assert abs(np.mean(hu) - 40.0) < 0.2 * look.noise_hu


def test_noise_grain_sets_its_correlation():
    correlations = []
    for grain in (0.0, 0.5, 1.2, 2.0):
        ranges = replace(PLAIN, soft_hu=(40.0, 40.0), noise_hu=(30.0, 30.0), noise_grain_px=(grain, grain))
        hu = render_hu(_pure("soft", 256), np.random.default_rng(3), ranges)
        assert np.std(hu) == pytest.approx(30.0, rel=0.06 + 0.04 * grain)
        correlations.append(_lag_one(hu))
    assert abs(correlations[0]) < 0.02
    assert correlations == sorted(correlations)
    assert correlations[2] == pytest.approx(np.exp(-1 / (4 * 1.2**2)), abs=0.04)  # a Gaussian's lag-1 correlation


# Distractors


def _with_only(name: str, seed: int, slab: AnatomySlab) -> tuple[np.ndarray, np.ndarray]:
    """The slab with only the distractor ``name``, and without it, from one seed (no noise: only it differs)."""
    on = render_hu(slab, np.random.default_rng(seed), replace(PLAIN, **{f"{name}_probability": 1.0}))
    return on, render_hu(slab, np.random.default_rng(seed), PLAIN)


def test_metal_is_a_dense_object_with_streaks():
    slab = _spine()
    for seed in SEEDS:
        on, off = _with_only("metal", seed, slab)
        assert on.max() >= PLAIN.metal_hu[0] - 1e-3
        y, x = np.unravel_index(np.argmax(on), on.shape)
        far = np.hypot(*np.mgrid[0:128, 0:128] - np.array([y, x])[:, None, None]) > 8.0 / slab.pixel_mm
        assert np.abs(on - off)[far].max() > 20.0  # streaks reach beyond the object


def test_a_calcified_aorta_lines_the_blood_in_front_of_the_spine():
    slab = _spine()
    spine_front = int(np.flatnonzero(slab.tissue("cancellous").any(axis=0))[0])
    for seed in SEEDS:
        on, off = _with_only("aorta", seed, slab)
        changed = on != off
        assert changed.any()
        assert np.all(slab.tissue("blood")[changed] >= 0.5)
        assert np.all(np.nonzero(changed)[1] < spine_front)
        assert np.all((on[changed] >= PLAIN.calcification_hu[0]) & (on[changed] <= PLAIN.calcification_hu[1]))


def test_bowel_gas_replaces_bowel_content_only():
    slab = _spine()
    for seed in SEEDS:
        on, off = _with_only("gas", seed, slab)
        changed = np.abs(on - off) > 1e-3
        assert changed.any()
        assert np.all(slab.tissue("bowel")[changed] > 0)
        assert np.all(on <= off + 1e-3)
        assert on[changed].min() >= PLAIN.gas_hu[0] - 1e-3


def test_beam_hardening_only_darkens():
    slab = _spine()
    for seed in SEEDS:
        on, off = _with_only("beam", seed, slab)
        assert (on < off - 5.0).any()
        assert np.all(on <= off + 1e-3)


def test_distractors_switch_off():
    looks = [draw_appearance(np.random.default_rng(seed), PLAIN) for seed in range(50)]
    assert not any(look.distractors for look in looks)
    every = replace(PLAIN, **{f"{name}_probability": 1.0 for name in DISTRACTORS})
    assert all(draw_appearance(np.random.default_rng(seed), every).distractors == set(DISTRACTORS) for seed in SEEDS)


# The whole step


def test_output_is_finite_float32_within_the_dicom_range():
    every = replace(AppearanceRanges(), **{f"{name}_probability": 1.0 for name in DISTRACTORS})
    slab = _spine()
    for seed in range(12):
        for ranges in (AppearanceRanges(), every):
            hu, look = _rendered(slab, seed, ranges)
            assert hu.dtype == np.float32 and hu.shape == slab.shape
            assert np.all(np.isfinite(hu))
            inside = hu if look.fov_padding_hu is None else hu[hu != look.fov_padding_hu]
            assert inside.min() >= HU_MIN and hu.max() <= HU_MAX


# The field of view


def _spine_columns(slab: AnatomySlab) -> np.ndarray:
    bone = slab.fractions[TISSUE["cancellous"]] + slab.fractions[TISSUE["posterior"]]
    return np.flatnonzero(bone.max(axis=0) > 0.5)


def test_outside_the_field_of_view_is_the_padding_value_in_bands_that_spare_the_spine():
    slab = _spine(size=160, pixel_mm=0.5)
    spine = _spine_columns(slab)
    margin = round(FOV_SPINE_MARGIN_MM / slab.pixel_mm)
    always = replace(AppearanceRanges(), fov_probability=1.0, fov_cut=(0.05, 0.45))
    padded_somewhere = 0
    for seed in range(10):
        hu, look = _rendered(slab, seed, always)
        pad = look.fov_padding_hu
        assert pad is not None and -3024 <= pad <= -1024 and pad == round(pad)
        columns = np.all(hu == pad, axis=0)  # a column is padding from top to bottom, or not at all
        assert not np.any((hu == pad).any(axis=0) & ~columns) or pad == HU_MIN
        outside = np.flatnonzero(columns)
        front, back = outside[outside < spine[0]], outside[outside > spine[-1]]
        assert len(front) + len(back) == len(outside)  # only bands at the two edges, none across the spine
        if len(front):
            assert front[0] == 0 and np.all(np.diff(front) == 1) and front[-1] <= spine[0] - margin
        if len(back):
            assert back[-1] == hu.shape[1] - 1 and np.all(np.diff(back) == 1) and back[0] >= spine[-1] + margin
        assert len(front) <= round(look.fov_cut[0] * hu.shape[1]) and len(back) <= round(look.fov_cut[1] * hu.shape[1])
        padded_somewhere += len(outside) > 0
        kept = hu[:, spine[0] - margin : spine[-1] + margin]
        assert kept.min() >= HU_MIN  # the spine and its surroundings are drawn as before
    assert padded_somewhere >= 8


def test_the_field_of_view_follows_its_probability_and_switches_off():
    looks = [draw_appearance(np.random.default_rng(seed)) for seed in range(400)]
    assert abs(np.mean([look.fov_padding_hu is not None for look in looks]) - AppearanceRanges().fov_probability) < 0.08
    plain = [draw_appearance(np.random.default_rng(seed), PLAIN) for seed in SEEDS]
    assert all(look.fov_padding_hu is None for look in plain)
    slab = _spine()
    hu, look = _rendered(slab, 3, replace(AppearanceRanges(), fov_probability=0.0))
    assert look.fov_padding_hu is None and hu.min() >= HU_MIN


def test_a_seed_gives_one_image_and_seeds_differ():
    slab = _spine()
    first = render_hu(slab, np.random.default_rng(7))
    np.testing.assert_array_equal(first, render_hu(slab, np.random.default_rng(7)))
    assert not np.array_equal(first, render_hu(slab, np.random.default_rng(8)))
    assert not np.allclose(first, render_hu(slab, np.random.default_rng(8)), atol=50.0)
