"""Reading PNG and JPEG slices (the paper's exports): grey levels kept exactly, colour to luminance, and bad or
hostile files refused with ImageReadError."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageReadError
from core.imaging.raster import MAX_PIXELS, decode_raster, is_raster, read_raster
from tests.core.imaging_helpers import LUMA, png_claiming_size, run_python


def save(array: np.ndarray, path: Path, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def read_error(path: Path) -> ImageReadError:
    with pytest.raises(ImageReadError) as caught:
        read_raster(path)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


@pytest.fixture
def grey8() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (30, 40), dtype=np.uint8)


def test_eight_bit_grey_png(grey8: np.ndarray, tmp_path: Path) -> None:
    image = read_raster(save(grey8, tmp_path / "grey.png"))

    assert image.pixels.dtype == np.float32 and image.pixels.flags.c_contiguous
    np.testing.assert_array_equal(image.pixels, grey8)
    assert (image.width, image.height, image.bits) == (40, 30, 8)
    assert not image.hu and image.spacing_mm is None
    assert image.label == "grey.png"


def test_sixteen_bit_grey_png_keeps_exact_values(tmp_path: Path) -> None:
    values = (np.arange(64 * 64, dtype=np.uint16) % 4096).reshape(64, 64)  # every value 0…4095
    path = save(values, tmp_path / "ct12.png")
    assert Image.open(path).mode.startswith("I;16")

    image = read_raster(path)

    assert image.bits == 16
    np.testing.assert_array_equal(image.pixels, values)
    assert image.pixels.max() == 4095


def test_sixteen_bit_extremes(tmp_path: Path) -> None:
    values = np.array([[0, 1, 32768], [40000, 65534, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(read_raster(save(values, tmp_path / "extremes.png")).pixels, values)


def test_rgb_with_equal_channels_keeps_exact_grey(grey8: np.ndarray, tmp_path: Path) -> None:
    rgb = np.repeat(grey8[..., np.newaxis], 3, axis=2)
    image = read_raster(save(rgb, tmp_path / "grey_rgb.png"))
    np.testing.assert_array_equal(image.pixels, grey8)


def test_rgba_with_equal_channels_keeps_exact_grey(grey8: np.ndarray, tmp_path: Path) -> None:
    rgba = np.dstack([grey8, grey8, grey8, np.full_like(grey8, 255)])
    np.testing.assert_array_equal(read_raster(save(rgba, tmp_path / "grey_rgba.png")).pixels, grey8)


def test_real_colour_becomes_luminance(tmp_path: Path) -> None:
    colour = np.random.default_rng(6).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    image = read_raster(save(colour, tmp_path / "colour.png"))
    np.testing.assert_allclose(image.pixels, colour @ LUMA, atol=0.5 + 1e-6)
    pure = np.zeros((1, 3, 3), np.uint8)
    pure[0, 0, 0], pure[0, 1, 1], pure[0, 2, 2] = 255, 255, 255
    np.testing.assert_allclose(read_raster(save(pure, tmp_path / "rgb.png")).pixels[0], [76, 150, 29], atol=0.5)


def test_palette_png(grey8: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    Image.fromarray(grey8).convert("P").save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_raster(path).pixels, grey8)


def test_colour_palette_png_becomes_luminance(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    image.putdata([0, 1])
    path = tmp_path / "colour_palette.png"
    image.save(path)
    np.testing.assert_allclose(read_raster(path).pixels[0], [255 * 0.299, 255 * 0.114], atol=0.5)


def test_grey_with_alpha_png(grey8: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.fromarray(grey8).convert("LA").save(path)
    np.testing.assert_array_equal(read_raster(path).pixels, grey8)


def test_jpeg_is_close_to_the_original(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    image = read_raster(save(ramp, tmp_path / "ramp.jpg", quality=95))
    assert image.pixels.shape == (48, 64) and image.bits == 8
    assert np.abs(image.pixels - ramp).max() <= 3


def test_colour_jpeg_becomes_luminance(tmp_path: Path) -> None:
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[:, :16] = (200, 40, 40)
    colour[:, 16:] = (40, 40, 200)
    image = read_raster(save(colour, tmp_path / "colour.jpeg", quality=95))
    expected = colour.astype(np.float64) @ LUMA
    assert np.abs(image.pixels[4:-4, 4:12] - expected[4:-4, 4:12]).max() <= 4
    assert np.abs(image.pixels[4:-4, 20:28] - expected[4:-4, 20:28]).max() <= 4


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    upright = np.zeros((20, 40), np.uint8)
    upright[:, :10] = 255  # a bright band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: show it turned 90° clockwise
    path = save(upright, tmp_path / "rotated.jpg", quality=95, exif=exif.tobytes())

    image = read_raster(path)

    assert image.pixels.shape == (40, 20)
    assert image.pixels[:10].mean() > 200 and image.pixels[12:].mean() < 30, "the left band is now on top"
    np.testing.assert_allclose(image.pixels, np.rot90(upright, k=-1), atol=40)


def test_decode_raster_reads_bytes(grey8: np.ndarray) -> None:
    encoded = io.BytesIO()
    Image.fromarray(grey8).save(encoded, format="PNG")
    image = decode_raster(encoded.getvalue(), label="embedded")
    np.testing.assert_array_equal(image.pixels, grey8)
    assert image.label == "embedded" and image.source is None


# --- bad input ------------------------------------------------------------------------------------------------


def test_truncated_png(grey8: np.ndarray, tmp_path: Path) -> None:
    data = save(grey8, tmp_path / "full.png").read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in read_error(path).message


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("a reader's notes, not an image\n")
    assert "not a PNG or JPEG" in read_error(path).message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "not a PNG or JPEG" in read_error(path).message


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in read_error(tmp_path / "missing.png").message


def test_bad_image_bytes() -> None:
    with pytest.raises(ImageReadError, match="not a PNG or JPEG"):
        decode_raster(b"<html></html>")


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (9_000, 9_000), (1_000_000, 80)])
def test_header_claiming_a_huge_image_is_refused(tmp_path: Path, width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming_size(width, height))
    assert "large" in read_error(path).message or "limit" in read_error(path).message


#: Run in a fresh interpreter whose address space is capped at 512 MiB above what it already uses, so that any
#: attempt to allocate the claimed pixels fails loudly (a MemoryError, not the ImageReadError it must raise).
MEASURE_READ = """
import json, resource, sys, time
from core.errors import ImageReadError
from core.imaging.raster import read_raster

with open("/proc/self/status") as status:
    in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (in_use + 512 * 2**20, resource.RLIM_INFINITY))
started = time.perf_counter()
try:
    read_raster(sys.argv[1])
    outcome = "read"
except ImageReadError as error:
    outcome = str(error)
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - started}))
"""


def test_huge_png_is_refused_quickly_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming_size(100_000, 100_000, bit_depth=16))  # 20 GB of pixels if decoded
    assert path.stat().st_size < 200

    result = run_python(MEASURE_READ, str(path))

    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert str(path) in measured["outcome"] and "large" in measured["outcome"]
    assert measured["seconds"] < 2


def test_raster_suffixes() -> None:
    assert is_raster(Path("a.PNG")) and is_raster(Path("b.jpeg")) and is_raster(Path("c.jpg"))
    assert not is_raster(Path("d.dcm")) and not is_raster(Path("e.png.json"))
