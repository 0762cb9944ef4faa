"""The appearance step of the anatomy phantom: an :class:`AnatomySlab`'s tissue fractions become CT numbers (HU).

After SynthSeg (Billot et al., Medical Image Analysis 2023), every case draws its own appearance from wide ranges, so
a network trained on it learns the shapes of the anatomy and not one rendering: a mean HU per tissue (contrast phase,
oral contrast and osteoporotic bone chosen at random), within-tissue variation, a trabecular texture in the cancellous
bone, a cortical shell (and so the endplates) at the edge of the bone, a smooth bias field, a gamma on the HU scale,
the reconstruction kernel (smooth or sharp) and correlated noise. Distractors are drawn at random too (see
:mod:`core.synthetic.distractors`): metal with streaks, a calcified aorta, bowel gas, beam-hardening bands. Last, the
edge of the reconstructed field of view: a scanner writes a padding value (commonly -3024, -2048, -2000 or -1024 HU;
drawn here from that range) outside the circle it reconstructs, which a sagittal reformat shows as bands in front of
and behind the body. The slice's own minimum then lies far below air, which changes what a min-max window makes of it
(the real chest CT here holds -2048).

Partial volume is exact: before the perturbations a pixel is Σ_k fraction_k · HU_k. All randomness comes from the
generator passed in, so a seed gives one image. Every range and probability is a field of :class:`AppearanceRanges`,
so each step can be switched off (a range of (0, 0), a probability of 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

import numpy as np
from scipy import ndimage

from core.synthetic.distractors import DISTRACTORS, draw_distractors
from core.synthetic.random_fields import bounding_box, smooth_field, three_tap_blur, uniform
from core.synthetic.slab import TISSUE, TISSUES, AnatomySlab

Range = tuple[float, float]
HU_MIN, HU_MAX = -1024.0, 3071.0  # the DICOM range of CT numbers that the output is clipped to
FOV_SPINE_MARGIN_MM = 15.0  # the field of view's edge stays at least this far in front of and behind the spine
GAMMA_LOW, GAMMA_HIGH = -1000.0, 2000.0  # the HU interval that the gamma is applied over
BONE = ("cancellous", "posterior", "bone")  # the classes that get a cortical shell at their common edge
SOLID = (*BONE, "cement", "metal")  # no shell where bone meets these (cement or a screw inside a body)
MIN_TEXTURE_PX = 0.5  # the trabecular texture's finer σ is at least this (finer does not survive sampling)

_WITHIN_SD_HU = {
    "air": (0.0, 10.0), "fat": (0.0, 20.0), "soft": (0.0, 20.0), "organ": (0.0, 20.0), "blood": (0.0, 15.0),
    "lung": (0.0, 60.0), "gas": (0.0, 20.0), "bowel": (0.0, 40.0), "disc": (0.0, 15.0), "canal": (0.0, 10.0),
    "cancellous": (0.0, 30.0), "posterior": (0.0, 60.0), "bone": (0.0, 60.0), "calcification": (0.0, 100.0),
    "metal": (0.0, 100.0), "cement": (0.0, 150.0),
}  # fmt: skip


class AppearanceRangeError(ValueError):
    """An :class:`AppearanceRanges` with a range whose low end is above its high end, or a probability outside 0…1."""


@dataclass(frozen=True)
class AppearanceRanges:
    """The ranges each case's appearance is drawn from, uniformly; HU unless named ``_mm`` (millimetres) or ``_px``
    (pixels). A ``_probability`` is the chance per case of the named option."""

    # Mean HU per tissue class (of core.synthetic.slab.TISSUES), drawn once per case.
    air_hu: Range = (-1020.0, -980.0)
    fat_hu: Range = (-120.0, -60.0)
    soft_hu: Range = (20.0, 70.0)
    organ_hu: Range = (30.0, 80.0)
    blood_hu: Range = (30.0, 60.0)
    lung_hu: Range = (-900.0, -700.0)
    gas_hu: Range = (-1000.0, -850.0)
    bowel_hu: Range = (0.0, 60.0)
    disc_hu: Range = (60.0, 120.0)
    canal_hu: Range = (0.0, 40.0)
    cancellous_hu: Range = (80.0, 350.0)
    posterior_hu: Range = (300.0, 900.0)  # cortical-rich posterior elements
    bone_hu: Range = (250.0, 800.0)  # ribs, sternum, pelvis, sacrum …
    calcification_hu: Range = (300.0, 1200.0)
    metal_hu: Range = (2500.0, 3071.0)
    cement_hu: Range = (1200.0, 3000.0)
    # Contrast phase (enhanced blood and organs), oral contrast in the bowel, osteoporotic cancellous bone.
    enhanced_probability: float = 0.5
    blood_enhanced_hu: Range = (120.0, 400.0)
    organ_enhanced_hu: Range = (80.0, 200.0)
    oral_contrast_probability: float = 0.2
    bowel_contrast_hu: Range = (150.0, 500.0)
    osteoporotic_probability: float = 0.15
    cancellous_osteoporotic_hu: Range = (40.0, 80.0)
    # Within-tissue variation: a smooth field of unit variance, scaled per class by a standard deviation drawn from
    # within_sd_hu[class] (HU), that varies over within_mm (at least 4 px); each body's cancellous bone offset by
    # N(0, body_sd_hu).
    within_sd_hu: MappingProxyType = field(default_factory=lambda: MappingProxyType(dict(_WITHIN_SD_HU)), hash=False)
    within_mm: Range = (3.0, 12.0)
    body_sd_hu: Range = (0.0, 20.0)
    # The cortical shell: a band this wide inside the edge of the bone classes, drawn at shell_hu.
    shell_hu: Range = (400.0, 1200.0)
    shell_mm: Range = (0.5, 2.0)
    # Trabecular texture in the cancellous bone: band-passed noise of this standard deviation and scale.
    texture_hu: Range = (10.0, 90.0)
    texture_mm: Range = (0.5, 2.0)
    # Bias field: a smooth cubic polynomial of at most this amplitude, multiplying HU + 1000 by 1 ± the first and
    # adding ± the second (HU).
    bias_multiplicative: Range = (0.0, 0.06)
    bias_additive_hu: Range = (0.0, 40.0)
    # Gamma on the HU normalised over [GAMMA_LOW, GAMMA_HIGH].
    gamma_probability: float = 0.5
    gamma: Range = (0.7, 1.4)
    # Reconstruction kernel: a Gaussian blur (σ in pixels); a sharp kernel adds an unsharp mask on top.
    blur_px: Range = (0.3, 1.2)
    sharp_probability: float = 0.25
    sharp_amount: Range = (0.3, 1.2)
    sharp_px: Range = (0.7, 1.5)
    # Noise: correlated Gaussian noise of this standard deviation (HU) and grain (σ of its correlation, pixels).
    noise_hu: Range = (5.0, 60.0)
    noise_grain_px: Range = (0.0, 1.2)
    # Distractors (core.synthetic.distractors): the chance per case of each, and their sizes.
    metal_probability: float = 0.1
    metal_mm: Range = (1.5, 6.0)  # the radius of the metal object
    streak_hu: Range = (100.0, 800.0)  # the amplitude of a bright or dark streak from it
    streak_mm: Range = (20.0, 100.0)  # the length over which the streaks fade (e-fold)
    streak_px: Range = (0.5, 1.5)  # a streak's half-width (pixels)
    streak_count: Range = (2, 8)
    aorta_probability: float = 0.3
    plaque_share: Range = (0.1, 0.5)  # share of the aortic wall (blood's edge, anterior of the spine) calcified
    plaque_mm: Range = (2.0, 6.0)  # the length scale of the plaques along the wall
    gas_probability: float = 0.4
    gas_share: Range = (0.1, 0.6)  # share of the bowel that becomes gas
    gas_mm: Range = (3.0, 15.0)  # the size of the gas blobs
    beam_probability: float = 0.2
    beam_hu: Range = (20.0, 120.0)  # the depth of a dark band between two dense bones
    beam_mm: Range = (1.0, 4.0)  # its width (σ)
    # The reconstructed field of view: outside it, the scanner's padding value, in front of and behind the body.
    fov_probability: float = 0.4
    fov_padding_hu: Range = (-3024.0, -1024.0)
    fov_cut: Range = (0.0, 0.3)  # the share of the image's width beyond the edge, drawn for the front and the back

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_probability") and not 0.0 <= value <= 1.0:
                raise AppearanceRangeError(f"{spec.name} must be a probability in 0…1, not {value}")
            if isinstance(value, tuple) and not (len(value) == 2 and value[0] <= value[1]):
                raise AppearanceRangeError(f"{spec.name} must be a range (low, high) with low ≤ high, not {value}")
        for name, value in self.within_sd_hu.items():
            if name not in TISSUE or not (len(value) == 2 and 0.0 <= value[0] <= value[1]):
                raise AppearanceRangeError(f"within_sd_hu[{name!r}] must be a tissue's (low, high) ≥ 0, not {value}")

    def tissue_hu(self, name: str, *, enhanced=False, oral_contrast=False, osteoporotic=False) -> Range:
        """The range of the mean HU of the tissue ``name`` in a case with these options."""
        if enhanced and name in ("blood", "organ"):
            return getattr(self, f"{name}_enhanced_hu")
        if oral_contrast and name == "bowel":
            return self.bowel_contrast_hu
        if osteoporotic and name == "cancellous":
            return self.cancellous_osteoporotic_hu
        return getattr(self, f"{name}_hu")

    def without_perturbations(self) -> AppearanceRanges:
        """These ranges with only the tissue means and the cortical shell left: no within-tissue variation, texture,
        bias, gamma, blur, sharpening, noise or distractor."""
        zero = (0.0, 0.0)
        kept = ("enhanced_probability", "oral_contrast_probability", "osteoporotic_probability")
        off = {spec.name: 0.0 for spec in fields(self) if spec.name.endswith("_probability") and spec.name not in kept}
        return replace(
            self, **off, within_sd_hu=MappingProxyType({name: zero for name in TISSUES}), body_sd_hu=zero,
            texture_hu=zero, bias_multiplicative=zero, bias_additive_hu=zero, blur_px=zero, noise_hu=zero,
        )  # fmt: skip


DEFAULT_RANGES = AppearanceRanges()


@dataclass(frozen=True)
class Appearance:
    """One case's appearance, as drawn from :class:`AppearanceRanges` (the places of texture, noise and distractors
    are drawn when it is applied to a slab). ``gamma`` 1 and ``sharp_amount`` 0 mean none."""

    tissue_hu: tuple[float, ...]  # mean per class of TISSUES
    within_sd_hu: tuple[float, ...]  # within-tissue standard deviation per class
    within_mm: float
    body_sd_hu: float
    shell_hu: float
    shell_mm: float
    texture_hu: float
    texture_mm: float
    bias_multiplicative: float
    bias_additive_hu: float
    gamma: float
    blur_px: float
    sharp_amount: float
    sharp_px: float
    noise_hu: float
    noise_grain_px: float
    distractors: frozenset[str] = frozenset()
    enhanced: bool = False
    oral_contrast: bool = False
    osteoporotic: bool = False
    fov_padding_hu: float | None = None  # None: the whole slice was reconstructed
    fov_cut: tuple[float, float] = (0.0, 0.0)  # the share of the width outside the field of view, front and back


def draw_appearance(rng: np.random.Generator, ranges: AppearanceRanges = DEFAULT_RANGES) -> Appearance:
    """A case's appearance drawn from ``ranges``."""
    options = {
        "enhanced": bool(rng.random() < ranges.enhanced_probability),
        "oral_contrast": bool(rng.random() < ranges.oral_contrast_probability),
        "osteoporotic": bool(rng.random() < ranges.osteoporotic_probability),
    }
    means = tuple(uniform(rng, ranges.tissue_hu(name, **options)) for name in TISSUES)
    within = tuple(uniform(rng, ranges.within_sd_hu.get(name, (0.0, 0.0))) for name in TISSUES)
    sharp = rng.random() < ranges.sharp_probability
    gamma = rng.random() < ranges.gamma_probability
    distractors = frozenset(name for name in DISTRACTORS if rng.random() < getattr(ranges, f"{name}_probability"))
    scalars = {
        name: uniform(rng, getattr(ranges, name))
        for name in ("within_mm", "body_sd_hu", "shell_hu", "shell_mm", "texture_hu", "texture_mm",
                     "bias_multiplicative", "bias_additive_hu", "blur_px", "sharp_px", "noise_hu", "noise_grain_px")
    }  # fmt: skip
    fov = rng.random() < ranges.fov_probability
    return Appearance(
        tissue_hu=means, within_sd_hu=within, gamma=uniform(rng, ranges.gamma) if gamma else 1.0,
        sharp_amount=uniform(rng, ranges.sharp_amount) if sharp else 0.0, distractors=distractors,
        fov_padding_hu=float(round(uniform(rng, ranges.fov_padding_hu))) if fov else None,
        fov_cut=(uniform(rng, ranges.fov_cut), uniform(rng, ranges.fov_cut)) if fov else (0.0, 0.0),
        **scalars, **options,
    )  # fmt: skip


def render_hu(slab: AnatomySlab, rng: np.random.Generator, ranges: AppearanceRanges = DEFAULT_RANGES) -> np.ndarray:
    """The slab as a CT image: float32 HU of shape (H, W), finite and within [HU_MIN, HU_MAX] (but for the padding
    value beyond a field of view's edge), with an appearance drawn from ``ranges`` by ``rng``."""
    return apply_appearance(slab, draw_appearance(rng, ranges), rng, ranges)


def apply_appearance(
    slab: AnatomySlab, look: Appearance, rng: np.random.Generator, ranges: AppearanceRanges = DEFAULT_RANGES
) -> np.ndarray:
    """The slab drawn with the appearance ``look``; ``rng`` places the texture, noise and distractors, whose sizes
    come from ``ranges``."""
    fractions = np.asarray(slab.fractions, dtype=np.float32)
    hu = _weighted_sum(look.tissue_hu, fractions)
    if max(look.within_sd_hu) > 0:
        spread = _weighted_sum(look.within_sd_hu, fractions)
        hu += spread * smooth_field(hu.shape, max(look.within_mm / slab.pixel_mm, 4.0), rng)
    core = _cortical_shell(hu, fractions, look, slab.pixel_mm)  # the cancellous bone inside the shell
    _trabecular_texture(hu, core, look, slab.pixel_mm, rng)
    _body_offsets(hu, core, slab, look, rng)
    draw_distractors(hu, slab, look.distractors, look, ranges, rng)
    _bias_field(hu, look, rng)
    if look.gamma != 1.0:
        scaled = np.maximum((hu - GAMMA_LOW) / (GAMMA_HIGH - GAMMA_LOW), 0.0)
        hu = np.power(scaled, np.float32(look.gamma)) * np.float32(GAMMA_HIGH - GAMMA_LOW) + np.float32(GAMMA_LOW)
    hu = _kernel(hu, look)
    _noise(hu, look, rng)
    hu = np.nan_to_num(hu, copy=False, nan=HU_MIN)
    hu = np.clip(hu, HU_MIN, HU_MAX, out=hu).astype(np.float32, copy=False)
    _field_of_view(hu, fractions, look, slab.pixel_mm)
    return hu


def _field_of_view(hu: np.ndarray, fractions: np.ndarray, look: Appearance, pixel_mm: float) -> None:
    """Columns beyond the reconstructed field of view (``look.fov_cut`` of the width, in front and behind) set to the
    padding value; the edge never comes within FOV_SPINE_MARGIN_MM of the spine (bodies and posterior elements)."""
    if look.fov_padding_hu is None:
        return
    width = hu.shape[1]
    front, back = round(look.fov_cut[0] * width), width - round(look.fov_cut[1] * width)
    spine = np.flatnonzero((fractions[TISSUE["cancellous"]] + fractions[TISSUE["posterior"]]).max(axis=0) > 0.5)
    if spine.size:
        margin = round(FOV_SPINE_MARGIN_MM / pixel_mm)
        front, back = min(front, max(0, int(spine[0]) - margin)), max(back, min(width, int(spine[-1]) + 1 + margin))
    hu[:, :front] = look.fov_padding_hu
    hu[:, back:] = look.fov_padding_hu


def _weighted_sum(weights, fractions: np.ndarray) -> np.ndarray:
    """Σ_k weight_k · fractions[k]: a pixel's value from its tissue fractions, exact partial volume. (einsum's own
    loops: BLAS's threads, on a busy machine, made this several times slower.)"""
    return np.einsum("k,khw->hw", np.asarray(weights, dtype=np.float32), fractions)


def _erode(solid: np.ndarray, steps: int) -> list[np.ndarray]:
    """``solid`` eroded (minimum over a square) by 0, 1 … ``steps`` pixels, the image's edge extended."""
    padded = np.pad(solid, steps, mode="edge")
    eroded = [padded]
    for _ in range(steps):
        last = eroded[-1]
        rows = np.minimum(np.minimum(last[:-2], last[1:-1]), last[2:])
        eroded.append(np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:]))
    return [level[steps - n : level.shape[0] - steps + n, steps - n : level.shape[1] - steps + n]
            for n, level in enumerate(eroded)]  # fmt: skip


def _cortical_shell(hu: np.ndarray, fractions: np.ndarray, look: Appearance, pixel_mm: float) -> np.ndarray:
    """Draw the shell into ``hu`` (the bone within ``shell_mm`` of the edge of the bone, cement and metal at
    ``shell_hu``); return the cancellous fraction left inside the shell."""
    cancellous = fractions[TISSUE["cancellous"]]
    bone = sum(fractions[TISSUE[name]] for name in BONE)
    solid = bone + sum(fractions[TISSUE[name]] for name in SOLID[len(BONE) :])
    width = look.shell_mm / pixel_mm
    steps, part = int(np.floor(width)), width - np.floor(width)
    box = bounding_box(solid > 0, steps + 2)  # a margin of no bone, so the crop's edge is no edge of the bone
    if box is None or width <= 0:
        return cancellous
    levels = _erode(solid[box], steps + 1)
    eroded = (1 - part) * levels[steps] + part * levels[steps + 1]
    shell = np.clip(1.0 - eroded / np.maximum(solid[box], 1e-6), 0.0, 1.0) * (bone[box] > 0)
    means = np.asarray([look.tissue_hu[TISSUE[name]] for name in BONE], dtype=np.float32)
    bone_hu = _weighted_sum(means, fractions[:, box[0], box[1]][[TISSUE[name] for name in BONE]])
    hu[box] += shell * (bone[box] * np.float32(look.shell_hu) - bone_hu)
    core = cancellous.copy()
    core[box] *= 1.0 - shell
    return core


def _trabecular_texture(hu: np.ndarray, core: np.ndarray, look: Appearance, pixel_mm: float, rng) -> None:
    """Band-passed noise of ``texture_hu`` standard deviation and ``texture_mm`` scale on the cancellous bone."""
    box = bounding_box(core > 0)
    if box is None or look.texture_hu <= 0:
        return
    white = rng.standard_normal(core[box].shape, dtype=np.float32)
    fine = max(look.texture_mm / pixel_mm / 2.0, MIN_TEXTURE_PX)  # the finer σ: half the trabecular spacing
    band = ndimage.gaussian_filter(white, fine, mode="reflect") - ndimage.gaussian_filter(white, 2 * fine)
    band /= max(float(band.std()), 1e-6)
    hu[box] += np.float32(look.texture_hu) * band * core[box]


def _body_offsets(hu: np.ndarray, core: np.ndarray, slab: AnatomySlab, look: Appearance, rng) -> None:
    """Each body's cancellous bone a little denser or lighter than the case's mean: N(0, ``body_sd_hu``)."""
    if look.body_sd_hu <= 0:
        return
    for body in slab.bodies:
        box = bounding_box(body.fraction > 0)
        offset = np.float32(rng.normal(0.0, look.body_sd_hu))
        if box is not None:
            hu[box] += offset * np.minimum(body.fraction[box], core[box])


def _bias_field(hu: np.ndarray, look: Appearance, rng: np.random.Generator) -> None:
    """A smooth cubic bias: HU + 1000 times 1 + m·P, plus a·Q, for random cubics P and Q over the image scaled to a
    maximum |P| = |Q| = 1 (m, a: ``bias_multiplicative`` and ``bias_additive_hu``)."""
    if look.bias_multiplicative <= 0 and look.bias_additive_hu <= 0:
        return
    ys = np.vander(np.linspace(-1, 1, hu.shape[0], dtype=np.float32), 4, increasing=True)
    xs = np.vander(np.linspace(-1, 1, hu.shape[1], dtype=np.float32), 4, increasing=True)
    cubic = np.add.outer(np.arange(4), np.arange(4)) <= 3
    surfaces = []
    for amplitude in (look.bias_multiplicative, look.bias_additive_hu):
        coefficients = (rng.standard_normal((4, 4)) * cubic).astype(np.float32)
        coefficients[0, 0] = 0.0
        surface = np.einsum("hi,iw->hw", ys, coefficients @ xs.T)  # einsum: BLAS's threads cost more than they save
        surface *= np.float32(amplitude / max(surface.max(), -surface.min(), 1e-6))
        surfaces.append(surface)
    multiplicative, additive = surfaces
    multiplicative *= hu + np.float32(1000.0)
    hu += multiplicative
    hu += additive


def _kernel(hu: np.ndarray, look: Appearance) -> np.ndarray:
    """The reconstruction kernel: a Gaussian blur of ``blur_px``, then (a sharp kernel) an unsharp mask of
    ``sharp_amount`` and σ ``sharp_px``."""
    hu, _ = three_tap_blur(hu, look.blur_px)
    if look.sharp_amount > 0:
        smooth, _ = three_tap_blur(hu, look.sharp_px)
        hu = hu + np.float32(look.sharp_amount) * (hu - smooth)
    return hu


def _noise(hu: np.ndarray, look: Appearance, rng: np.random.Generator) -> None:
    """Gaussian noise of standard deviation ``noise_hu``, correlated over ``noise_grain_px`` (σ of the blur that
    shapes white noise; the 2-D kernel's Σk² is what the white noise's σ becomes)."""
    if look.noise_hu <= 0:
        return
    margin = int(np.ceil(look.noise_grain_px**2 / 0.5 - 1e-9))
    white = rng.standard_normal((hu.shape[0] + 2 * margin, hu.shape[1] + 2 * margin), dtype=np.float32)
    noise, kernel = three_tap_blur(white, look.noise_grain_px, pad=False)
    hu += noise * np.float32(look.noise_hu / float(np.sum(kernel**2)))
