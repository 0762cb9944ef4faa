"""Draw the application icon: a stylised lumbar segment seen from the side, three vertebral bodies with their discs,
the middle one framed by a detection box. Writes ``resources/icons/``: an SVG, PNGs of 16 to 512 px, a Windows
``.ico`` and a macOS ``.icns``. The same geometry feeds the SVG and the PNGs (drawn with Pillow at 4x, then reduced),
so they match; the output is the same byte for byte on every run.

    uv run python installer/make_icons.py
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "resources" / "icons"
NAME = "vertebra-review"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
CANVAS = 512  # the SVG's user units; every shape below is in these units

TILE = "#1f3b57"  # dark slate blue, the background tile
BONE = "#efe6d2"  # cortical bone
MARROW = "#d9c9a3"  # cancellous bone, a little darker
DISC = "#8fb8dc"  # intervertebral disc
BOX = "#e69f00"  # the detection box: Okabe-Ito orange, as the app's OVCF colour

# (x, y, width, height, corner radius) of the three vertebral bodies, top to bottom, and of the two discs
BODIES = ((148, 62, 216, 108, 26), (140, 202, 232, 112, 26), (148, 346, 216, 108, 26))
DISCS = ((160, 176, 192, 20, 10), (160, 320, 192, 20, 10))
INSET = 18  # cancellous core inside each body's cortical shell
FRAME = (122, 188, 268, 140, 14)  # the detection box around the middle body
FRAME_WIDTH = 13
TILE_RADIUS = 96


def _svg_rect(x: float, y: float, w: float, h: float, r: float, fill: str) -> str:
    return f'  <rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{r}" fill="{fill}"/>'


def svg() -> str:
    """The icon as SVG text."""
    shapes = [_svg_rect(0, 0, CANVAS, CANVAS, TILE_RADIUS, TILE)]
    shapes += [_svg_rect(*disc, DISC) for disc in DISCS]
    for x, y, w, h, r in BODIES:
        shapes.append(_svg_rect(x, y, w, h, r, BONE))
        shapes.append(_svg_rect(x + INSET, y + INSET, w - 2 * INSET, h - 2 * INSET, r - INSET / 2, MARROW))
    x, y, w, h, r = FRAME
    half = FRAME_WIDTH / 2
    shapes.append(f'  <rect x="{x + half}" y="{y + half}" width="{w - FRAME_WIDTH}" height="{h - FRAME_WIDTH}" '
                  f'rx="{r}" fill="none" stroke="{BOX}" stroke-width="{FRAME_WIDTH}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CANVAS}" height="{CANVAS}" '
            f'viewBox="0 0 {CANVAS} {CANVAS}">\n  <title>Vertebra Review</title>\n'
            + "\n".join(shapes) + "\n</svg>\n")


def _rect(draw: ImageDraw.ImageDraw, scale: float, x: float, y: float, w: float, h: float, r: float, *,
          fill: str | None = None, outline: str | None = None, width: float = 0) -> None:
    box = (x * scale, y * scale, (x + w) * scale - 1, (y + h) * scale - 1)
    draw.rounded_rectangle(box, radius=r * scale, fill=fill, outline=outline, width=round(width * scale))


def png(size: int) -> Image.Image:
    """The icon at ``size`` x ``size`` pixels (drawn at 4x and reduced with a Lanczos filter)."""
    big = 4 * size
    scale = big / CANVAS
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    _rect(draw, scale, 0, 0, CANVAS, CANVAS, TILE_RADIUS, fill=TILE)
    for disc in DISCS:
        _rect(draw, scale, *disc, fill=DISC)
    for x, y, w, h, r in BODIES:
        _rect(draw, scale, x, y, w, h, r, fill=BONE)
        _rect(draw, scale, x + INSET, y + INSET, w - 2 * INSET, h - 2 * INSET, r - INSET / 2, fill=MARROW)
    _rect(draw, scale, *FRAME, outline=BOX, width=FRAME_WIDTH)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def write_icons(folder: Path = ICONS) -> list[Path]:
    """Write every icon file into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    svg_path = folder / f"{NAME}.svg"
    svg_path.write_text(svg(), encoding="utf-8")
    written.append(svg_path)
    images = {size: png(size) for size in PNG_SIZES}
    for size, image in images.items():
        path = folder / f"{NAME}-{size}.png"
        path.write_bytes(_png_bytes(image))
        written.append(path)
    ico = folder / f"{NAME}.ico"
    images[256].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    written.append(ico)
    icns = folder / f"{NAME}.icns"
    images[512].save(icns, format="ICNS")
    written.append(icns)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ICONS, help=f"folder to write into (default {ICONS})")
    args = parser.parse_args()
    for path in write_icons(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
