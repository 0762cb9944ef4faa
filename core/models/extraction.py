"""The vertebra extraction module (the paper's VEModule): jittered patches around each detected box.

Each box gives ``count`` patches (5 in the paper), jittered by a translation of up to ``shift`` pixels (10) and a
scale of ``scale`` (0.9 to 1.1) of the box about its centre. A patch is the jittered box's pixels at their own
scale on a ``canvas`` x ``canvas`` square (196) centred on the box: zero-padded around a small box, centre-cropped
from a large one, so the aspect ratio and the size in pixels are kept. The canvas is then resized to ``size`` (224)
for the classifier.

``context`` (0 in the paper) keeps a margin of that fraction of the jittered box's width and height on each side,
instead of zeroing everything outside the box. Lesions that sit on an endplate, above all Schmorl's nodes, lie on
the box's edge, and a jitter towards the body's centre cuts them off; with the margin they stay in the patch.

``fit`` (off in the paper) scales each patch to its box instead: the canvas is the box's larger side plus the
context margin, and the jitter's translation shrinks with it (``shift`` stays a share of ``canvas``), so every
vertebra fills the patch whatever its size in pixels. The paper's slices show vertebrae of 100 to 200 pixels; the
phantom's are 25 to 70, and at their own scale they fill a fifth of a 128 canvas, with a Schmorl's node of a few
pixels that a ±10 px jitter cuts off.

All patches of a slice come from one batched :func:`torchvision.ops.roi_align` call (bilinear resampling of the
canvas to the output grid) followed by a mask that zeroes what lies outside the box or the image: no Python loop
over single crops. In training mode the jitter is random; in test mode it is a fixed pattern of ``count`` jitters
(the first is the box itself), so that predictions are repeatable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchvision.ops import roi_align

from core.ranges import real_in, whole_in

#: Test-time jitters (dx, dy as a fraction of ``shift``; scale as a fraction of the scale range's half-width).
_TEST_PATTERN = ((0.0, 0.0, 0.0), (-0.6, -0.6, -0.5), (0.6, -0.6, 0.5), (-0.6, 0.6, 0.5), (0.6, 0.6, -0.5))


@dataclass(frozen=True)
class PatchGeometry:
    canvas: int = 196
    size: int = 224
    count: int = 5
    shift: float = 10.0
    scale_min: float = 0.9
    scale_max: float = 1.1
    context: float = 0.0  # margin kept around the box, as a fraction of its size (0: the paper's crop)
    fit: bool = False  # scale each box to fill the patch (False: the paper's fixed canvas, pixels at their own scale)

    def __post_init__(self) -> None:
        if type(self.context) not in (int, float) or not 0.0 <= self.context <= 1.0:
            raise ValueError(f"the patch context margin must be between 0 and 1, not {self.context!r}")
        whole_in(self.canvas, "the patch canvas", 16, 4096)
        whole_in(self.size, "the patch size", 32, 1024)
        whole_in(self.count, "the test-time patches per box", 1, 64)
        real_in(self.shift, "the patch jitter's shift", 0.0, 1000.0)
        real_in(self.scale_min, "the patch jitter's smallest scale", 0.1, 10.0)
        real_in(self.scale_max, "the patch jitter's largest scale", self.scale_min, 10.0)

    def to_json(self) -> dict:
        return asdict(self)


def jitter_boxes(boxes: np.ndarray, geometry: PatchGeometry, rng: np.random.Generator | None = None,
                 count: int | None = None) -> np.ndarray:
    """(n, 4) boxes → (n * count, 4) jittered boxes, box by box (the ``count`` jitters of box 0 come first).

    ``rng`` None gives the fixed test pattern; otherwise translations are uniform in [-shift, shift] and scales
    uniform in [scale_min, scale_max]."""
    count = geometry.count if count is None else count
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    half = np.stack([(b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2], axis=1)
    if rng is None:
        pattern = np.array([_TEST_PATTERN[i % len(_TEST_PATTERN)] for i in range(count)])
        mid, spread = (geometry.scale_max + geometry.scale_min) / 2, (geometry.scale_max - geometry.scale_min) / 2
        shifts = np.tile(pattern[:, :2] * geometry.shift, (len(b), 1))
        scales = np.tile(mid + pattern[:, 2] * spread, len(b))
    else:
        shifts = rng.uniform(-geometry.shift, geometry.shift, size=(len(b) * count, 2))
        scales = rng.uniform(geometry.scale_min, geometry.scale_max, size=len(b) * count)
    if geometry.fit:  # the translation is a share of each box's own canvas, as it is of the fixed one
        shifts = shifts * np.repeat(fit_canvas(half * 2, geometry) / geometry.canvas, count)[:, None]
    centre = np.repeat(centre, count, axis=0) + shifts
    half = np.repeat(half, count, axis=0) * scales[:, None]
    return np.concatenate([centre - half, centre + half], axis=1)


def fit_canvas(sizes: np.ndarray | torch.Tensor, geometry: PatchGeometry) -> np.ndarray | torch.Tensor:
    """The side of the canvas that boxes of ``sizes`` (m, 2: width, height) fill with their margin, in fit mode."""
    larger = sizes.max(axis=1) if isinstance(sizes, np.ndarray) else sizes.max(dim=1).values
    return larger * (1 + 2 * geometry.context)


def extract_patches(image: torch.Tensor, boxes: torch.Tensor | np.ndarray, geometry: PatchGeometry) -> torch.Tensor:
    """Patches of ``image`` (C, H, W, float) for ``boxes`` (m, 4, already jittered): a (m, C, size, size) tensor."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32, device=image.device).reshape(-1, 4)
    size = geometry.size
    if len(boxes) == 0:
        return image.new_zeros((0, image.shape[0], size, size))
    if geometry.fit:
        canvas = fit_canvas(boxes[:, 2:] - boxes[:, :2], geometry).clamp(min=1.0)[:, None]  # (m, 1)
    else:
        canvas = torch.full((len(boxes), 1), float(geometry.canvas), device=image.device)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    origin = centre - canvas / 2
    rois = torch.cat([torch.zeros(len(boxes), 1, device=image.device), origin, origin + canvas], dim=1)
    # sampling_ratio 1 at the fixed canvas (no shrinking); an adaptive average where a large box is shrunk to fit.
    patches = roi_align(image[None].float(), rois, output_size=(size, size), spatial_scale=1.0,
                        sampling_ratio=-1 if geometry.fit else 1, aligned=True)
    # Where each output pixel's centre falls in the slice: keep it only inside the box and inside the image.
    steps = (torch.arange(size, device=image.device, dtype=torch.float32) + 0.5) * (canvas / size)  # (m, size)
    xs = origin[:, 0:1] + steps  # (m, size)
    ys = origin[:, 1:2] + steps
    height, width = image.shape[-2:]
    margin = (boxes[:, 2:] - boxes[:, :2]) * geometry.context  # (m, 2): x and y margins
    kept = torch.cat([boxes[:, :2] - margin, boxes[:, 2:] + margin], dim=1)
    inside_x = (xs >= kept[:, 0:1].clamp(min=0)) & (xs < kept[:, 2:3].clamp(max=width))
    inside_y = (ys >= kept[:, 1:2].clamp(min=0)) & (ys < kept[:, 3:4].clamp(max=height))
    mask = inside_y[:, :, None] & inside_x[:, None, :]
    return patches * mask[:, None].to(patches.dtype)
