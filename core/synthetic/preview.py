"""A montage of phantom slices with their truth boxes, coloured by diagnosis, for a quick look at a study."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from core.annotations.colours import colour_for
from core.annotations.model import disease_label
from core.fileio import atomic_write_bytes
from core.imaging.windowing import BONE, apply_window
from core.study.layout import Study

TILE_WIDTH = 320


def _tile(study: Study, case: str, slice_id: str) -> Image.Image:
    image = study.read_image(case, slice_id)
    annotation = study.load_annotation(case, slice_id)
    grey = Image.fromarray(apply_window(image.pixels, BONE)).convert("RGB")
    scale = TILE_WIDTH / grey.width
    tile = grey.resize((TILE_WIDTH, max(1, round(grey.height * scale))), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(tile)
    for vertebra in annotation.vertebrae if annotation else ():
        box = [v * scale for v in vertebra.box.as_list()]
        colour = colour_for(vertebra.diseases)
        draw.rectangle(box, outline=colour, width=2)
        label = f"{vertebra.level or ''} {disease_label(vertebra.diseases) if vertebra.diseases else ''}".strip()
        draw.text((box[2] + 3, box[1]), label, fill=colour)
    draw.text((4, 4), f"{case}/{slice_id}", fill="#FFFFFF")
    return tile


def write_preview(study: Study, path: Path, tiles: int = 8) -> Path:
    """The middle slice of the first ``tiles`` cases (or more slices of fewer cases, none twice), four to a row."""
    picks: list[tuple[str, str]] = []
    cases = study.cases()
    for case in cases:
        slices = study.slices(case)
        picks.append((case, slices[len(slices) // 2]))
    for case in cases:
        if len(picks) >= tiles:
            break
        slices = study.slices(case)
        more = [(case, s) for s in slices[:: max(1, len(slices) // 3)] if (case, s) not in picks]
        picks.extend(more[: tiles - len(picks)])
    images = [_tile(study, c, s) for c, s in picks[:tiles]]
    columns = min(4, len(images))
    rows = (len(images) + columns - 1) // columns
    height = max(i.height for i in images)
    sheet = Image.new("RGB", (columns * TILE_WIDTH, rows * height), "black")
    for n, tile in enumerate(images):
        sheet.paste(tile, ((n % columns) * TILE_WIDTH, (n // columns) * height))
    return atomic_write_bytes(path, png_bytes_rgb(sheet))


def png_bytes_rgb(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
