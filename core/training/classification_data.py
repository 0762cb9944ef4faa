"""Classifier training data: one sample per annotated vertebra box, the paper's resampling, and batches of
augmented patches made on the fly (a new random jitter every time a box is drawn).

**Resampling** (the paper's, against the OVCF count). Each box belongs to one group, that of its rarest disease
(KD, SN, PS, OF, then OVCF, by the paper's prevalence), or NORMAL. With N the number of boxes in the OVCF group,
each epoch draws NORMAL boxes down to 2N (without replacement) and each of OF, SN, KD and PS up (or down) to 0.5N
(with replacement when the group is smaller); the OVCF group is kept as it is. Labels stay multi-label: a box drawn
for its KD group still teaches OVCF when it has both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.annotations.geometry import HIT_IOM, iom_matrix
from core.annotations.model import CLASS_CODES, DISEASES, NORMAL
from core.annotations.targets import label_vector
from core.imaging.rendering import DEFAULT_RENDERING, ModelInput
from core.models.classifier import (
    MAX_SMOOTHING,
    grey_tensor,
    normalise,
    resampled,
    resampling,
    smoothed,
    smoothing_radius,
)
from core.models.extraction import PatchGeometry, extract_patches, fit_canvas, jitter_boxes
from core.study.images import study_model_input
from core.study.layout import Study
from core.training.datasets import SliceRecord
from core.training.transforms import AppearanceJitter

#: Which group a multi-disease box counts in: its rarest disease first (the paper's Table 2 prevalence).
GROUP_PRIORITY: tuple[str, ...] = ("KD", "SN", "PS", "OF", "OVCF")
MINORITY = ("OF", "SN", "KD", "PS")


@dataclass(frozen=True)
class BoxSample:
    record: int  # index into the records
    box: int  # index of the box in its record
    labels: np.ndarray  # (6,) floats, CLASS_CODES order

    @property
    def group(self) -> str:
        return box_group(self.labels)


def box_group(labels: np.ndarray) -> str:
    present = {CLASS_CODES[i] for i in range(len(DISEASES)) if labels[i] > 0.5}
    for code in GROUP_PRIORITY:
        if code in present:
            return code
    return NORMAL


def box_samples(records: Sequence[SliceRecord]) -> list[BoxSample]:
    return [BoxSample(r, b, label_vector(diseases))
            for r, record in enumerate(records) for b, diseases in enumerate(record.diseases)]


def resample(samples: Sequence[BoxSample], rng: np.random.Generator, normal_factor: float = 2.0,
             minority_factor: float = 0.5) -> list[int]:
    """Indices of one epoch's samples after the paper's resampling (shuffled)."""
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(sample.group, []).append(index)
    base = len(groups.get("OVCF", []))
    if base == 0:  # no OVCF to measure against: keep everything once
        chosen = list(range(len(samples)))
    else:
        chosen = list(groups.get("OVCF", []))
        normals = groups.get(NORMAL, [])
        want = min(len(normals), round(normal_factor * base))
        chosen += rng.choice(normals, size=want, replace=False).tolist() if want else []
        for code in MINORITY:
            members = groups.get(code, [])
            want = round(minority_factor * base)
            if members and want:
                chosen += rng.choice(members, size=want, replace=want > len(members)).tolist()
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def detector_normals(record: SliceRecord, detected: np.ndarray, min_iom: float = HIT_IOM) -> SliceRecord:
    """The paper's normal boxes: detector boxes that hit no annotated (disease) box (IoM at most ``min_iom`` with
    every one, the complement of the hit rule) are added as NORMAL vertebrae."""
    detected = np.asarray(detected, dtype=np.float64).reshape(-1, 4)
    if len(record.boxes) and len(detected):
        keep = iom_matrix(detected, record.boxes).max(axis=1) <= min_iom
        detected = detected[keep]
    return SliceRecord(record.study, record.case, record.slice_id, record.width, record.height,
                       np.concatenate([record.boxes, detected]), (*record.diseases, *[frozenset()] * len(detected)),
                       (*record.levels, *[None] * len(detected)))


class SliceCache:
    """The model's 8-bit input of every slice used, read once."""

    def __init__(self, window: str = DEFAULT_RENDERING) -> None:
        self.window = window
        self._studies: dict[Path, Study] = {}
        self._images: dict[tuple[Path, str, str], ModelInput] = {}

    def _input(self, record: SliceRecord) -> ModelInput:
        key = (record.study, record.case, record.slice_id)
        if key not in self._images:
            if record.study not in self._studies:
                self._studies[record.study] = Study.open(record.study)
            self._images[key] = study_model_input(self._studies[record.study], record.case, record.slice_id,
                                                   self.window)
        return self._images[key]

    def image(self, record: SliceRecord) -> np.ndarray:
        return self._input(record).pixels

    def put(self, record: SliceRecord, pixels: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> None:
        """Hold ``pixels`` (and their spacing) as the slice's input, instead of reading it from its study."""
        self._images[(record.study, record.case, record.slice_id)] = ModelInput(pixels, spacing_mm)

    def spacing(self, record: SliceRecord) -> tuple[float, float] | None:
        """The slice's pixel spacing (row, column mm), None where its file does not say."""
        return self._input(record).spacing_mm


#: The grain of a classifier's photometric jitter (``ClassifierTraining.appearance_grain``). ``fine``: the detector's
#: jitter (the bundled classifiers were trained so), whose noise is white, finer than a scanner's: reconstructed CT
#: noise is correlated over about a pixel (the phantom's sites: 0.7 and 0.9). ``coarse``: that noise correlated over
#: 0.5-1 pixel, and every spatial effect (the resolution's factor, the blur, the sharpening's radius, the noise's
#: grain) drawn 1.5-4.5 times larger, as softer kernels, thicker or coarser reconstructions and other scanners show.
APPEARANCE_GRAIN: dict[str, AppearanceJitter] = {
    "fine": AppearanceJitter(),
    "coarse": AppearanceJitter(scale=(1.5, 4.5), grain_px=(0.5, 1.0)),
}


@dataclass(frozen=True)
class Augmentation:
    """Per-patch augmentation: rotation, translation, noise, brightness and contrast (the paper's list); with
    ``appearance``, also the detector's photometric jitter (resolution, blur or sharpening, levels, gamma, noise), as
    another scanner would show the same vertebra."""

    degrees: float = 10.0
    translate: float = 0.04  # of the patch side
    noise: float = 0.03  # largest noise SD, in 0…1 grey units
    brightness: float = 0.08
    contrast: float = 0.15
    appearance: AppearanceJitter | None = None

    def apply(self, patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``patches``: (m, 1, s, s) grey in 0…1 → augmented, same shape."""
        m = len(patches)
        if m == 0:
            return patches

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return torch.rand(*(shape or (m,)), generator=generator) * (high - low) + low

        angle = uniform(-math.radians(self.degrees), math.radians(self.degrees))
        shift = uniform(-2 * self.translate, 2 * self.translate, m, 2)  # affine_grid's units span 2 per side
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(patches), list(patches.shape), align_corners=False)
        out = F.grid_sample(patches, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.appearance is not None:
            out = self._jitter(out, generator)
        contrast = uniform(1 - self.contrast, 1 + self.contrast).view(m, 1, 1, 1).to(out)
        brightness = uniform(-self.brightness, self.brightness).view(m, 1, 1, 1).to(out)
        sigma = uniform(0, self.noise).view(m, 1, 1, 1).to(out)
        noise = torch.randn(out.shape, generator=generator).to(out) * sigma
        return (out * contrast + brightness + noise).clamp_(0, 1)

    def _jitter(self, patches: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seeds = torch.randint(2**31, (len(patches),), generator=generator).tolist()
        grey = patches.detach().cpu().float().numpy()
        jittered = np.stack([self.appearance.grey(grey[i, 0], np.random.default_rng(seed))[None]
                             for i, seed in enumerate(seeds)])
        return torch.from_numpy(jittered).to(patches)


#: Where a simulated image edge cuts a box (:func:`cut_at_edge`): top, bottom, left, right.
EDGE_SIDES = (0.4, 0.4, 0.1, 0.1)
EDGE_KEEP = (0.5, 0.9)  # the share of the box's height (or width) left in view


def cut_at_edge(boxes: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """``boxes`` (n, 4) with a ``share`` of them cut as the image's edge cuts a body: one side (mostly the top or the
    bottom, as a sagittal slice ends) moved in so that 0.5-0.9 of the box stays, what lies beyond left out of the patch
    (the extraction masks everything outside the box), as the detector's box of a body cut by the scan ends at the
    image's edge. The label stays: a cut body is not a compressed one."""
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    cut = rng.random(len(b)) < share
    sides = rng.choice(4, size=len(b), p=EDGE_SIDES)
    keep = rng.uniform(*EDGE_KEEP, size=len(b))
    width, height = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    for i in np.flatnonzero(cut):
        if sides[i] == 0:
            b[i, 1] = b[i, 3] - keep[i] * height[i]
        elif sides[i] == 1:
            b[i, 3] = b[i, 1] + keep[i] * height[i]
        elif sides[i] == 2:
            b[i, 0] = b[i, 2] - keep[i] * width[i]
        else:
            b[i, 2] = b[i, 0] + keep[i] * width[i]
    return b


def _smoothed_around(image: torch.Tensor, boxes: np.ndarray, geometry: PatchGeometry,
                     sd: float) -> tuple[torch.Tensor, np.ndarray]:
    """``image`` (C, H, W) cut to the part that the patches of ``boxes`` read, smoothed by a Gaussian of ``sd`` pixels,
    and the boxes in its pixels: the patches are those of the whole slice smoothed (the cut keeps the kernel's reach
    beyond every canvas, and the slice's own edges where a canvas meets them), at a fraction of the cost, since a
    training batch reads one or two boxes of each slice. ``sd`` 0: both as they are."""
    if sd <= 0 or len(boxes) == 0:
        return image, boxes
    sizes = boxes[:, 2:] - boxes[:, :2]
    half = (fit_canvas(sizes, geometry) if geometry.fit else np.full(len(boxes), float(geometry.canvas))) / 2
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    reach = smoothing_radius(sd) + 2  # the kernel, and a pixel more on each side for the bilinear sampling
    height, width = image.shape[-2:]
    x0 = max(0, math.floor((centre[:, 0] - half).min()) - reach)
    y0 = max(0, math.floor((centre[:, 1] - half).min()) - reach)
    x1 = min(width, math.ceil((centre[:, 0] + half).max()) + reach)
    y1 = min(height, math.ceil((centre[:, 1] + half).max()) + reach)
    if x1 <= x0 or y1 <= y0:  # every canvas off the slice: nothing to smooth
        return image, boxes
    return smoothed(image[:, y0:y1, x0:x1], sd), boxes - np.array([x0, y0, x0, y0], dtype=np.float64)


def _resampled_around(image: torch.Tensor, boxes: np.ndarray, geometry: PatchGeometry,
                      size: tuple[int, int] | None) -> tuple[torch.Tensor, np.ndarray]:
    """``image`` (C, H, W) resampled to ``size`` (:func:`~core.models.classifier.resampling`; None: as it is) and the
    boxes in its pixels, as the classifier resamples a slice in use. A slice that is enlarged is resampled only where
    the patches read (with a margin for the smoothing), on the same sampling grid as the whole slice's bilinear
    resampling, so the patches are the same at a fraction of the cost; a slice that is shrunk (antialiased) is
    resampled whole."""
    height, width = image.shape[-2:]
    if size is None or len(boxes) == 0 or size[0] < height or size[1] < width:
        return resampled(image, boxes, size)
    scale = np.array([size[1] / width, size[0] / height])
    moved = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * np.tile(scale, 2)
    sizes = moved[:, 2:] - moved[:, :2]
    half = (fit_canvas(sizes, geometry) if geometry.fit else np.full(len(moved), float(geometry.canvas))) / 2
    reach = half[:, None] + 4 + 3 * MAX_SMOOTHING  # in the resampled pixels
    centre = (moved[:, :2] + moved[:, 2:]) / 2
    (j0, i0), (j1, i1) = np.floor((centre - reach).min(axis=0)), np.ceil((centre + reach).max(axis=0))
    j0, i0, j1, i1 = int(max(0, j0)), int(max(0, i0)), int(min(size[1], j1)), int(min(size[0], i1))
    if j1 <= j0 or i1 <= i0:
        return resampled(image, boxes, size)
    # where interpolate(align_corners=False) samples each output pixel, clamped to the slice as it clamps
    xs = ((np.arange(j0, j1) + 0.5) / scale[0] - 0.5).clip(0, width - 1)
    ys = ((np.arange(i0, i1) + 0.5) / scale[1] - 0.5).clip(0, height - 1)
    x_lo, y_lo = int(xs[0]), int(ys[0])
    x_hi, y_hi = min(width, int(xs[-1]) + 2), min(height, int(ys[-1]) + 2)
    part = image[:, y_lo:y_hi, x_lo:x_hi]
    grid_x = torch.from_numpy((xs - x_lo + 0.5) / part.shape[-1] * 2 - 1).to(image)
    grid_y = torch.from_numpy((ys - y_lo + 0.5) / part.shape[-2] * 2 - 1).to(image)
    grid = torch.stack(torch.meshgrid(grid_y, grid_x, indexing="ij")[::-1], dim=-1)[None]
    out = F.grid_sample(part[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    return out, moved - np.array([j0, i0, j0, i0], dtype=np.float64)


def patch_batch(samples: Sequence[BoxSample], records: Sequence[SliceRecord], cache: SliceCache,
                geometry: PatchGeometry, device: torch.device, *, rng: np.random.Generator | None = None,
                augmentation: Augmentation | None = None, generator: torch.Generator | None = None,
                edge_cut: float = 0.0, smoothing: float = 0.0,
                spacing_mm: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(patches (m, 3, s, s) normalised, labels (m, 6)) for ``samples``: one jittered patch per sample (random with
    ``rng``, the box itself without; with ``rng``, an ``edge_cut`` share of them cut by :func:`cut_at_edge`), grouped
    by slice so each slice is one batched extraction, from the slice resampled to ``spacing_mm`` pixels (0: as it is)
    and smoothed by a Gaussian of ``smoothing`` pixels as the classifier does in use; the augmentation then works on
    that patch."""
    by_slice: dict[int, list[int]] = {}
    for position, sample in enumerate(samples):
        by_slice.setdefault(sample.record, []).append(position)
    patches = [torch.empty(0)] * len(samples)
    for record_index, positions in by_slice.items():
        record = records[record_index]
        boxes = record.boxes[[samples[p].box for p in positions]]
        jittered = jitter_boxes(boxes, geometry, rng, count=1)
        if rng is not None and edge_cut > 0:
            jittered = cut_at_edge(jittered, edge_cut, rng)
        pixels = cache.image(record)
        image, jittered = _resampled_around(grey_tensor(pixels, torch.device("cpu")), jittered, geometry,
                                            resampling(cache.spacing(record), spacing_mm, pixels.shape[:2]))
        image, jittered = _smoothed_around(image, jittered, geometry, smoothing)
        found = extract_patches(image, jittered, geometry)
        for offset, position in enumerate(positions):
            patches[position] = found[offset]
    batch = torch.stack(patches)
    if augmentation is not None and generator is not None:
        batch = augmentation.apply(batch, generator)
    labels = torch.from_numpy(np.stack([s.labels for s in samples]))
    return normalise(batch.to(device)), labels.to(device)
