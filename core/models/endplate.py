"""The endplate head: Schmorl's nodes seen in the two endplate bands of each box, at the band's own scale.

A Schmorl's node is a notch of a few pixels in the upper or lower endplate. The classifier's whole-vertebra patch
shows it, but a ResNet trained from scratch on a few hundred nodes did not learn it (validation AUC 0.65 on the
phantom). The head looks only where a node can be: for each box it cuts two bands, one across the upper and one
across the lower endplate (reaching ``outside`` of the box's height beyond the edge and ``inside`` into the body,
with a margin of ``margin`` of its width on the left and right), turns the lower one upside down so that both show
the endplate at the top, scales each to ``height`` x ``width`` pixels and standardises it (zero mean, unit SD:
the slice's min-max window varies with what else the slice holds). A small CNN scores each band and the box takes
the larger score (multiple-instance learning: a node is in one band or the other). Its probability replaces the
classifier's SN output; the SN threshold is then chosen on the validation split like the other classes'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.ops import roi_align


@dataclass(frozen=True)
class EndplateGeometry:
    height: int = 32
    width: int = 96
    outside: float = 0.15  # beyond the endplate, as a share of the box's height
    inside: float = 0.35  # into the body, as a share of the box's height
    margin: float = 0.1  # left and right, as a share of the box's width
    channels: tuple[int, ...] = (16, 32, 64, 96)

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"endplate bands must be at least 8 x 8 pixels, not {self.height} x {self.width}")
        if not (0 <= self.outside <= 1 and 0 < self.inside <= 1 and 0 <= self.margin <= 1):
            raise ValueError("the endplate band's outside, inside and margin shares must lie between 0 and 1")
        if not self.channels or any(int(c) < 1 for c in self.channels):
            raise ValueError("the endplate head needs at least one stage of at least one channel")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EndplateGeometry:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return cls(**values)


def band_boxes(boxes: torch.Tensor, geometry: EndplateGeometry) -> torch.Tensor:
    """(m, 4) boxes → (2m, 4): the upper bands of all boxes, then their lower bands."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    left, right = boxes[:, 0] - geometry.margin * width, boxes[:, 2] + geometry.margin * width
    top = torch.stack([left, boxes[:, 1] - geometry.outside * height, right, boxes[:, 1] + geometry.inside * height], 1)
    bottom = torch.stack([left, boxes[:, 3] - geometry.inside * height, right, boxes[:, 3] + geometry.outside * height],
                         1)
    return torch.cat([top, bottom])


def extract_bands(image: torch.Tensor, boxes: torch.Tensor | np.ndarray, geometry: EndplateGeometry) -> torch.Tensor:
    """The endplate bands of ``boxes`` in ``image`` (1, H, W, grey in 0…1): (m, 2, height, width), upper band
    first, the lower one flipped upside down, each standardised. Outside the image counts as black."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32, device=image.device).reshape(-1, 4)
    m = len(boxes)
    if m == 0:
        return image.new_zeros((0, 2, geometry.height, geometry.width))
    rois = torch.cat([torch.zeros(2 * m, 1, device=image.device), band_boxes(boxes, geometry)], dim=1)
    bands = roi_align(image[None].float(), rois, output_size=(geometry.height, geometry.width), spatial_scale=1.0,
                      sampling_ratio=-1, aligned=True)[:, 0]  # (2m, h, w)
    bands = torch.stack([bands[:m], bands[m:].flip(1)], dim=1)
    mean = bands.mean(dim=(1, 2, 3), keepdim=True)
    spread = bands.std(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)
    return (bands - mean) / spread


class EndplateNet(nn.Module):
    """Stages of two 3 x 3 convolutions (batch norm, ReLU) and a 2 x 2 max pool, a global max pool and one logit per
    band; a box's logit is the larger of its two bands'."""

    def __init__(self, geometry: EndplateGeometry) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        before = 1
        for channels in geometry.channels:
            for _ in range(2):
                layers += [nn.Conv2d(before, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                           nn.ReLU(inplace=True)]
                before = channels
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(before, 1)

    def band_logits(self, bands: torch.Tensor) -> torch.Tensor:
        """(m, 2, h, w) → (m, 2) logits, one per band."""
        m = len(bands)
        features = self.features(bands.reshape(2 * m, 1, *bands.shape[2:])).amax(dim=(2, 3))
        return self.head(features).view(m, 2)

    def forward(self, bands: torch.Tensor) -> torch.Tensor:
        """(m, 2, h, w) → (m,) logits."""
        return self.band_logits(bands).amax(dim=1)
