"""Reading PNG and JPEG slices (the paper's exports): 8- or 16-bit, grey or colour."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageReadError, ImageTooLargeError
from core.imaging import limits
from core.imaging.image import SliceImage
from core.imaging.limits import in_memory_bytes, refuse_over

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Pixels of the largest image read (for readers that count pixels): images are refused before decoding by their
#: bytes, :data:`~core.imaging.limits.MAX_IMAGE_BYTES` (a decompression-bomb guard); CT slices are under 1 MP.
MAX_PIXELS = limits.MAX_IMAGE_BYTES // limits.FLOAT32_BYTES
#: Bytes per pixel Pillow holds for the modes that are not one byte a band.
_MODE_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def is_raster(path: Path) -> bool:
    return path.suffix.lower() in RASTER_SUFFIXES


def read_raster(path: str | Path) -> SliceImage:
    """Read a PNG or JPEG as a grey float32 slice (colour → luminance; grey RGB keeps its exact values)."""
    path = Path(path)
    return _decode(path, path, path.name)


def decode_raster(data: bytes, source: Path | None = None, label: str = "") -> SliceImage:
    """Decode PNG or JPEG bytes (for example a LabelMe file's embedded ``imageData``)."""
    return _decode(io.BytesIO(data), source, label)


def raster_size(source: Path | bytes, path: Path | None = None) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG file (or its bytes), from its header alone. Raises :class:`ImageReadError`
    as :func:`read_raster` does: not an image, corrupt, or over MAX_PIXELS (nothing is decoded)."""
    with _opened(io.BytesIO(source) if isinstance(source, bytes) else source, path) as image:
        return image.width, image.height


def _decode(stream: Path | io.BytesIO, path: Path | None, label: str) -> SliceImage:
    with _opened(stream, path) as image:
        pixels, bits = _grey_pixels(ImageOps.exif_transpose(image))
    return SliceImage(pixels=pixels, source=path, hu=False, orientation="unknown", label=label, bits=bits)


@contextmanager
def _opened(stream: Path | io.BytesIO, path: Path | None) -> Iterator[Image.Image]:
    """The image opened, refused over MAX_IMAGE_BYTES before it is decoded (Pillow's bomb warning is an error, never
    printed); whatever Pillow raises on the content is an :class:`ImageReadError` naming ``path``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                _check_decoded_size(image, path)
                yield image
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError("file not found", path) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError("not a PNG or JPEG image", path) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image is too large to decode safely ({exc})", path) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"image is truncated or corrupt ({exc})", path) from exc
    except MemoryError as exc:
        raise ImageReadError("image is too large to decode in the memory available", path) from exc
    except Exception as exc:
        raise ImageReadError(f"image is truncated or corrupt ({type(exc).__name__}: {exc})", path) from exc


def _check_decoded_size(image: Image.Image, path: Path | None) -> None:
    """Refuse, from the header, an image whose decoded pixels (at least float32 each) exceed MAX_IMAGE_BYTES."""
    stored = _MODE_BYTES.get(image.mode, len(image.getbands()))
    amount = in_memory_bytes(image.width * image.height, stored)
    claim = f"{image.width} x {image.height} pixels"
    refuse_over(amount, limits.MAX_IMAGE_BYTES, claim, ImageTooLargeError, path, claimant="the image")


def _grey_pixels(image: Image.Image) -> tuple[np.ndarray, int]:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.ascontiguousarray(np.asarray(image), dtype=np.float32), 16
    if mode == "F":
        return np.ascontiguousarray(np.asarray(image), dtype=np.float32), 32
    if mode in ("RGB", "RGBA", "P", "LA", "PA", "CMYK", "YCbCr"):
        rgb = np.asarray(image.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return rgb[..., 0].astype(np.float32), 8
        return np.asarray(image.convert("L"), dtype=np.float32), 8
    return np.asarray(image.convert("L"), dtype=np.float32), 8
