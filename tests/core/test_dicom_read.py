"""Reading DICOM: single files, the real 20-slice series, multi-frame objects, compressed syntaxes, MONOCHROME1,
rescale and windows.

Expected values come from outside the reader: raw pixel bytes, pydicom's published reference pixels, the
uncompressed twins of compressed test files, Pillow's own decoders, and the label map that sits beside the series.
"""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_color_lut
from pydicom.uid import ImplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless, generate_uid

from core.imaging.dicom import read_dicom, read_header
from core.imaging.dicom_series import DicomSeries, scan_dicom
from core.imaging.image import Volume
from core.imaging.windowing import Window, apply_window
from tests.conftest import pydicom_file
from tests.core.imaging_helpers import (
    LUMA,
    copy_files,
    header,
    lps_to_ras,
    map_indices,
    position_along_normal,
    rewrite_dicom,
    voxel_map,
)

SERIES_WINDOWS = (Window(40.0, 300.0, "WINDOW1"), Window(300.0, 1500.0, "WINDOW2"))


def only_series(path: Path) -> DicomSeries:
    scan = scan_dicom(path)
    assert len(scan.series) == 1, [s.uid for s in scan.series]
    return scan.series[0]


def frame_names(series: DicomSeries) -> list[str]:
    return [ref.header.path.name for ref in series.frames]


@pytest.fixture(scope="module")
def series_volume(dicom_series_dir: Path) -> Volume:
    return only_series(dicom_series_dir).load_volume()


@pytest.fixture(scope="module")
def uncompressed_series(dicom_series_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real series re-encoded as explicit VR little endian (decoded once by pydicom, tags unchanged)."""
    folder = tmp_path_factory.mktemp("uncompressed")
    for path in dicom_series_files:
        rewrite_dicom(path, folder / path.name, decompress=True)
    return folder


# --- a single file ---------------------------------------------------------------------------------------------


def test_ct_small_is_read_in_hu_with_spacing_and_orientation(ct_small: Path) -> None:
    ds = pydicom.dcmread(ct_small)
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    raw = np.frombuffer(ds.PixelData, dtype="<i2").reshape(128, 128)

    [image] = read_dicom(ct_small)

    assert image.hu
    assert image.pixels.dtype == np.float32 and image.pixels.flags.c_contiguous
    np.testing.assert_array_equal(image.pixels, raw.astype(np.float32) - 1024)
    assert image.spacing_mm == pytest.approx((0.661468, 0.661468))
    assert image.orientation == "axial"
    assert image.source == ct_small
    assert image.bits == 16
    assert image.windows == ()


def test_rescale_slope_other_than_one_is_applied(ct_small: Path, tmp_path: Path) -> None:
    def rescale(ds: pydicom.Dataset) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = "2.5", "-1000"

    path = rewrite_dicom(ct_small, tmp_path / "slope.dcm", rescale)
    raw = np.frombuffer(pydicom.dcmread(path).PixelData, dtype="<i2").reshape(128, 128).astype(np.float64)
    expected = raw * 2.5 - 1000

    [image] = read_dicom(path)
    np.testing.assert_allclose(image.pixels, expected, rtol=0, atol=1e-3)
    assert image.hu

    volume = only_series(path).load_volume()
    assert volume.voxels.dtype == np.float32, "slope 2.5 is not exact in int16"
    np.testing.assert_allclose(volume.voxels[0], expected, rtol=0, atol=1e-3)


def test_fractional_intercept_keeps_float_values(ct_small: Path, tmp_path: Path) -> None:
    def rescale(ds: pydicom.Dataset) -> None:
        ds.RescaleIntercept = "-1024.5"

    path = rewrite_dicom(ct_small, tmp_path / "intercept.dcm", rescale)
    raw = np.frombuffer(pydicom.dcmread(path).PixelData, dtype="<i2").reshape(128, 128)
    volume = only_series(path).load_volume()
    assert volume.voxels.dtype == np.float32
    np.testing.assert_array_equal(volume.voxels[0], raw.astype(np.float32) - np.float32(1024.5))


def test_rescale_type_other_than_hu_is_not_hu(ct_small: Path, tmp_path: Path) -> None:
    def unspecified(ds: pydicom.Dataset) -> None:
        ds.RescaleType = "US"

    [image] = read_dicom(rewrite_dicom(ct_small, tmp_path / "us.dcm", unspecified))
    assert not image.hu


# --- windows --------------------------------------------------------------------------------------------------


def test_single_window_tag_becomes_a_window(ct_small: Path, tmp_path: Path) -> None:
    def window(ds: pydicom.Dataset) -> None:
        ds.WindowCenter, ds.WindowWidth = "50", "350"

    [image] = read_dicom(rewrite_dicom(ct_small, tmp_path / "w.dcm", window))
    assert image.windows == (Window(50.0, 350.0, "DICOM 1"),)
    assert image.default_window() == Window(50.0, 350.0, "DICOM 1")


def test_multi_valued_window_tags_keep_their_names(ct_small: Path, tmp_path: Path) -> None:
    def windows(ds: pydicom.Dataset) -> None:
        ds.WindowCenter = ["40", "400", "-600"]
        ds.WindowWidth = ["400", "1800", "1500"]
        ds.WindowCenterWidthExplanation = ["SOFT", "BONE"]

    [image] = read_dicom(rewrite_dicom(ct_small, tmp_path / "w.dcm", windows))
    assert image.windows == (
        Window(40.0, 400.0, "SOFT"),
        Window(400.0, 1800.0, "BONE"),
        Window(-600.0, 1500.0, "DICOM 3"),
    )


def test_window_with_zero_width_is_dropped(ct_small: Path, tmp_path: Path) -> None:
    def windows(ds: pydicom.Dataset) -> None:
        ds.WindowCenter, ds.WindowWidth = ["40", "400"], ["0", "1800"]

    [image] = read_dicom(rewrite_dicom(ct_small, tmp_path / "w.dcm", windows))
    assert image.windows == (Window(400.0, 1800.0, "DICOM 2"),)


def test_real_series_windows_are_read(dicom_series_files: list[Path], series_volume: Volume) -> None:
    ds = header(dicom_series_files[0])
    assert list(ds.WindowCenterWidthExplanation) == ["WINDOW1", "WINDOW2"]
    [image] = read_dicom(dicom_series_files[0])
    assert image.windows == SERIES_WINDOWS
    assert series_volume.windows == SERIES_WINDOWS


# --- the real series: discovery and order ---------------------------------------------------------------------


def test_series_without_series_uid_is_one_series(dicom_series_dir: Path, dicom_series_files: list[Path]) -> None:
    assert len(dicom_series_files) == 20
    assert {str(header(p).get("SeriesInstanceUID", "")) for p in dicom_series_files} == {""}

    scan = scan_dicom(dicom_series_dir)

    assert scan.skipped == [], "the label NIfTI beside the series is passed over quietly"
    [series] = scan.series
    assert len(series.frames) == 20
    assert set(series.files) == set(dicom_series_files)
    assert series.orientation == "axial"
    assert series.slice_spacing() == pytest.approx(2.0)


def test_shuffled_copies_are_sorted_along_the_slice_normal(dicom_series_files: list[Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    names = [f"{k:02d}.dcm" for k in rng.permutation(len(dicom_series_files))]
    copies = copy_files(dicom_series_files, tmp_path / "shuffled", names)
    expected = [p.name for p in sorted(copies, key=lambda p: position_along_normal(header(p)))]
    assert expected != sorted(names), "the shuffle must disagree with the file names"

    series = only_series(tmp_path / "shuffled")

    assert frame_names(series) == expected
    along = series.positions_along_normal()
    assert along is not None and np.all(np.diff(along) > 0)
    # The file's instance numbers run against the position, so position, not InstanceNumber, decided the order.
    instance_numbers = [ref.header.instance_number for ref in series.frames]
    assert instance_numbers == sorted(instance_numbers, reverse=True)


def test_equal_positions_are_ordered_by_instance_number(dicom_series_files: list[Path], tmp_path: Path) -> None:
    first, second = dicom_series_files[0], dicom_series_files[1]
    position = header(first).ImagePositionPatient

    def same_place(number: int):
        def edit(ds: pydicom.Dataset) -> None:
            ds.ImagePositionPatient = position
            ds.InstanceNumber = number
            ds.SOPInstanceUID = generate_uid()

        return edit

    folder = tmp_path / "ties"
    rewrite_dicom(first, folder / "a.dcm", same_place(7))
    rewrite_dicom(first, folder / "b.dcm", same_place(3))
    rewrite_dicom(second, folder / "c.dcm", lambda ds: setattr(ds, "InstanceNumber", 1))
    assert position_along_normal(header(folder / "c.dcm")) < position_along_normal(header(folder / "a.dcm"))

    series = only_series(folder)

    assert frame_names(series) == ["c.dcm", "b.dcm", "a.dcm"]


def test_feet_first_series_is_sorted_and_placed_in_the_patient(
    uncompressed_series: Path, series_volume: Volume, tmp_path: Path
) -> None:
    """Rows run right to left (orientation -1,0,0 / 0,1,0), so the slice normal points to the feet."""
    folder = tmp_path / "feet_first"
    for path in sorted(uncompressed_series.iterdir()):

        def mirror(ds: pydicom.Dataset) -> None:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            columns, spacing = int(ds.Columns), float(ds.PixelSpacing[1])
            ds.ImagePositionPatient = [x + (columns - 1) * spacing, y, z]
            ds.ImageOrientationPatient = [-1, 0, 0, 0, 1, 0]
            ds.PatientPosition = "FFS"
            ds.PixelData = np.ascontiguousarray(ds.pixel_array[:, ::-1]).tobytes()

        rewrite_dicom(path, folder / path.name, mirror)

    series = only_series(folder)
    z = [ref.geometry.position[2] for ref in series.frames]
    assert z == sorted(z, reverse=True), "along a feet-pointing normal the head end comes first"

    volume = series.load_volume()
    assert volume.shape == series_volume.shape
    mapping = voxel_map(volume.affine, series_volume.affine)
    assert not np.array_equal(mapping, np.eye(4)), "the feet-first grid is ordered differently"
    rng = np.random.default_rng(3)
    voxels = np.column_stack([rng.integers(0, n, 4000) for n in volume.shape])
    there = map_indices(mapping, voxels)
    assert np.all((there >= 0) & (there < np.array(series_volume.shape)))
    np.testing.assert_array_equal(
        volume.voxels[tuple(voxels.T)], series_volume.voxels[tuple(there.T)], "same millimetre, same HU"
    )


def test_several_series_in_one_folder_are_split_by_series_uid(dicom_series_files: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "two_series"
    uids = ("1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2")
    for k, uid in enumerate(uids):
        for path in dicom_series_files[:10]:

            def tag(ds: pydicom.Dataset, uid: str = uid, k: int = k) -> None:
                ds.SeriesInstanceUID = uid
                ds.SeriesNumber = k + 1
                ds.SeriesDescription = f"series {k + 1}"
                ds.SOPInstanceUID = generate_uid()

            rewrite_dicom(path, folder / f"s{k}_{path.name}", tag)

    scan = scan_dicom(folder)

    assert [s.uid for s in scan.series] == list(uids)
    for k, series in enumerate(scan.series):
        assert len(series.frames) == 10
        assert series.description == f"series {k + 1}"
        assert {str(header(p).SeriesInstanceUID) for p in series.files} == {uids[k]}
        assert series.affine()[2, 0] == pytest.approx(2.0), "each series is a regular 2 mm stack, not doubled"


# --- the real series: the volume ------------------------------------------------------------------------------


def test_series_volume_shape_dtype_and_affine(dicom_series_files: list[Path], series_volume: Volume) -> None:
    headers = [header(p) for p in dicom_series_files]
    lowest = min(headers, key=lambda ds: float(ds.ImagePositionPatient[2]))

    assert series_volume.shape == (20, 512, 512)
    assert series_volume.voxels.dtype == np.int16
    assert series_volume.hu
    assert series_volume.spacing_mm == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert series_volume.axis_codes == "SPL"
    np.testing.assert_allclose(series_volume.affine[:3, 3], lps_to_ras(lowest.ImagePositionPatient))


def test_series_volume_slices_are_the_files_in_hu(dicom_series_files: list[Path], series_volume: Volume) -> None:
    by_height = sorted(dicom_series_files, key=lambda p: float(header(p).ImagePositionPatient[2]))
    for k in (0, 13):
        ds = pydicom.dcmread(by_height[k])
        expected = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        np.testing.assert_array_equal(series_volume.voxels[k], expected)
    assert series_volume.voxels.min() >= -1024 and series_volume.voxels.max() > 1000, "air and dense bone"


def test_series_volume_matches_its_label_map(series_volume: Volume, series_labels: Path) -> None:
    labels = nib.load(series_labels)
    label_data = np.asarray(labels.dataobj)
    mapping = voxel_map(series_volume.affine, labels.affine)

    corners = np.array([[s, r, c] for s in (0, 19) for r in (0, 511) for c in (0, 511)])
    mapped = map_indices(mapping, corners)
    assert np.all((mapped >= 0) & (mapped < label_data.shape)), "the same grid, voxel for voxel"
    indices = np.indices(series_volume.shape).reshape(3, -1).T
    label_on_volume = label_data[tuple(map_indices(mapping, indices).T)].reshape(series_volume.shape)

    vertebrae = np.isin(label_on_volume, (32, 33))  # T12 and T11
    assert vertebrae.sum() > 10_000
    assert series_volume.voxels[vertebrae].mean() > 200, "vertebra labels fall on bone"
    assert series_volume.voxels[label_on_volume == 0].mean() < -500, "background is mostly air"


def test_series_slices_are_read_in_series_order(uncompressed_series: Path, series_volume: Volume) -> None:
    slices = only_series(uncompressed_series).load_slices()
    assert len(slices) == 20
    for k in (0, 19):
        assert slices[k].hu and slices[k].orientation == "axial"
        np.testing.assert_array_equal(slices[k].pixels, series_volume.voxels[k].astype(np.float32))


# --- multi-frame ----------------------------------------------------------------------------------------------


def test_enhanced_ct_reads_per_frame_functional_groups(tmp_path: Path) -> None:
    path = pydicom_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    assert "PixelSpacing" not in ds and "RescaleIntercept" not in ds, "geometry lives in the functional groups"

    slices = read_dicom(path)

    assert len(slices) == 2
    for k, image in enumerate(slices):
        np.testing.assert_array_equal(image.pixels, ds.pixel_array[k].astype(np.float32) - 1024)
        assert image.spacing_mm == pytest.approx((0.388672, 0.388672))
        assert image.orientation == "axial"
        assert image.windows == (Window(49.0, 102.0, "DICOM 1"),)
        assert image.label == f"eCT_Supplemental.dcm frame {k + 1} of 2"
        assert not image.hu, "Rescale Type US (a perfusion map) in the functional group"

    def hu(ds: pydicom.Dataset) -> None:
        ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0].RescaleType = "HU"

    assert all(image.hu for image in read_dicom(rewrite_dicom(path, tmp_path / "hu.dcm", hu)))


def test_enhanced_ct_frames_form_a_volume(tmp_path: Path) -> None:
    path = pydicom_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    positions = [item.PlanePositionSequence[0].ImagePositionPatient for item in ds.PerFrameFunctionalGroupsSequence]
    assert [float(p[2]) for p in positions] == [-159.0, -149.0]

    series = only_series(path)
    assert [ref.frame for ref in series.frames] == [1, 0], "orientation -1,0,0/0,1,0: the normal points to the feet"
    volume = series.load_volume()

    assert volume.shape == (2, 512, 512)
    np.testing.assert_array_equal(volume.voxels[0], ds.pixel_array[1].astype(np.int32) - 1024)
    np.testing.assert_allclose(volume.affine[:3, 3], lps_to_ras(positions[1]))
    np.testing.assert_allclose(volume.affine[:3, 0], [0, 0, -10.0])


def test_rgb_rle_two_frames_become_grey_by_luminance() -> None:
    # pydicom's reference colours for SC_rgb_rle_2frame.dcm: column 50, rows 5, 15, …, 95; frame 2 is inverted.
    colours = np.array(
        [
            (255, 0, 0),
            (255, 128, 128),
            (0, 255, 0),
            (128, 255, 128),
            (0, 0, 255),
            (128, 128, 255),
            (0, 0, 0),
            (64, 64, 64),
            (192, 192, 192),
            (255, 255, 255),
        ]
    )
    slices = read_dicom(pydicom_file("SC_rgb_rle_2frame.dcm"))
    assert len(slices) == 2
    rows = list(range(5, 100, 10))
    np.testing.assert_allclose(slices[0].pixels[rows, 50], colours @ LUMA, atol=1e-3)
    np.testing.assert_allclose(slices[1].pixels[rows, 50], (255 - colours) @ LUMA, atol=1e-3)
    assert all("colour image converted to grey" in s.notes for s in slices)


def test_palette_colour_is_looked_up_before_grey() -> None:
    path = pydicom_file("OBXXXX1A_rle_2frame.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    indices = ds.pixel_array
    assert tuple(indices[0, 300, 491:494]) == (1, 246, 1), "pydicom's reference indices"
    lut = np.stack(
        [np.frombuffer(ds[f"{c}PaletteColorLookupTableData"].value, dtype="<u2") for c in ("Red", "Green", "Blue")],
        axis=-1,
    ).astype(np.float64)
    expected = (lut[indices] @ LUMA) / 257  # 16-bit palette entries brought to 0…255

    slices = read_dicom(path)

    assert len(slices) == 2
    for k in (0, 1):
        np.testing.assert_allclose(slices[k].pixels, expected[k], atol=1e-3)
    assert not np.allclose(slices[0].pixels[300, 491:494], (1, 246, 1)), "not the raw palette indices"


# --- compressed transfer syntaxes -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Expected explicit VR, but found implicit VR:UserWarning")
def test_jpeg_baseline_rgb_matches_both_decoders() -> None:
    path = pydicom_file("SC_rgb_jpeg.dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    by_pillow = pydicom.pixels.pixel_array(ds, decoding_plugin="pillow").astype(np.float64) @ LUMA
    by_libjpeg = pydicom.pixels.pixel_array(ds, decoding_plugin="pylibjpeg").astype(np.float64) @ LUMA

    [image] = read_dicom(path)

    assert image.pixels.shape == (256, 256)
    assert np.abs(image.pixels - by_pillow).max() <= 2
    assert np.abs(image.pixels - by_libjpeg).max() <= 2


def test_jpeg_baseline_rgb_reference_colours() -> None:
    # pydicom's reference for SC_rgb_dcmtk_+eb+cr.dcm (JPEG baseline, RGB): pure colours at column 50.
    colours = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0), (64, 64, 64), (255, 255, 255)])
    rows = [5, 25, 45, 65, 75, 95]
    [image] = read_dicom(pydicom_file("SC_rgb_dcmtk_+eb+cr.dcm"))
    np.testing.assert_allclose(image.pixels[rows, 50], colours @ LUMA, atol=1e-3)


def test_jpeg_baseline_of_a_real_ct_slice_decodes_close_to_the_original(
    dicom_series_files: list[Path], tmp_path: Path
) -> None:
    [slice_] = read_dicom(dicom_series_files[10])
    grey = apply_window(slice_.pixels, Window(40.0, 400.0))
    encoded = io.BytesIO()
    Image.fromarray(grey).save(encoded, format="JPEG", quality=92)

    def as_jpeg(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.Modality = "OT"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
        ds.PixelData = encapsulate([encoded.getvalue()])
        ds["PixelData"].VR = "OB"

    path = rewrite_dicom(dicom_series_files[10], tmp_path / "jpeg.dcm", as_jpeg)

    [image] = read_dicom(path)

    assert not image.hu
    difference = np.abs(image.pixels - grey.astype(np.float32))
    assert difference.mean() < 1.5 and difference.max() <= 24, (difference.mean(), difference.max())
    assert np.corrcoef(image.pixels.ravel(), grey.ravel())[0, 1] > 0.99


def test_jpeg_lossless_reference_pixels() -> None:
    # pydicom's reference values for its JPEG lossless (process 14, selection value 1) files.
    [sixteen] = read_dicom(pydicom_file("JPEG-LL.dcm"))
    assert sixteen.pixels.shape == (1024, 256)
    assert tuple(sixteen.pixels[400, 124:132]) == (60, 58, 61, 68, 59, 65, 64, 67)
    assert tuple(sixteen.pixels[600, 124:132]) == (3, 1, 2, 0, 2, 1, 2, 0)

    [eight] = read_dicom(pydicom_file("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    assert eight.pixels.shape == (768, 1024)
    assert tuple(eight.pixels[300, 512:520]) == (26, 26, 25, 22, 19, 16, 14, 15)
    assert tuple(eight.pixels[600, 512:520]) == (45, 43, 41, 38, 33, 30, 26, 21)
    assert eight.windows == (Window(127.0, 254.0, "DICOM 1"),)


@pytest.mark.parametrize(
    ("compressed", "uncompressed"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("JPEG2000.dcm", "JPEG2000_UNC.dcm"),
        ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
    ],
)
def test_compressed_test_files_equal_their_uncompressed_twins(compressed: str, uncompressed: str) -> None:
    decoded = read_dicom(pydicom_file(compressed))
    reference = read_dicom(pydicom_file(uncompressed))
    assert len(decoded) == len(reference)
    for got, want in zip(decoded, reference, strict=True):
        np.testing.assert_array_equal(got.pixels, want.pixels)


def test_real_series_jpeg2000_lossless_equals_its_uncompressed_copy(
    dicom_series_files: list[Path], uncompressed_series: Path, series_volume: Volume
) -> None:
    assert header(dicom_series_files[0]).file_meta.TransferSyntaxUID == JPEG2000Lossless

    plain = only_series(uncompressed_series).load_volume()

    np.testing.assert_array_equal(plain.voxels, series_volume.voxels)
    np.testing.assert_array_equal(plain.affine, series_volume.affine)


def test_real_series_jpeg2000_agrees_with_pillow(dicom_series_files: list[Path]) -> None:
    ds = pydicom.dcmread(dicom_series_files[5])
    [codestream] = generate_frames(ds.PixelData, number_of_frames=1)
    by_pillow = np.asarray(Image.open(io.BytesIO(codestream))).astype(np.int32)
    if by_pillow.max() > 2 ** int(ds.BitsStored) - 1:  # Pillow widens 12-bit samples to 16 bits
        shift = 16 - int(ds.BitsStored)
        assert not np.any(by_pillow & (2**shift - 1))
        by_pillow >>= shift

    [image] = read_dicom(dicom_series_files[5])

    np.testing.assert_array_equal(image.pixels, by_pillow + float(ds.RescaleIntercept))


def test_rle_of_a_real_ct_slice_decodes_to_the_same_hu(dicom_series_files: list[Path], tmp_path: Path) -> None:
    [original] = read_dicom(dicom_series_files[10])

    def as_rle(ds: pydicom.Dataset) -> None:
        ds.compress(RLELossless)

    path = rewrite_dicom(dicom_series_files[10], tmp_path / "rle.dcm", as_rle, decompress=True)
    assert header(path).file_meta.TransferSyntaxUID == RLELossless

    [image] = read_dicom(path)

    assert image.hu
    np.testing.assert_array_equal(image.pixels, original.pixels)


# --- MONOCHROME1 ----------------------------------------------------------------------------------------------


def test_monochrome1_non_hu_is_inverted_so_that_higher_is_brighter(tmp_path: Path) -> None:
    source = pydicom_file("MR_small.dcm")
    [normal] = read_dicom(source)

    def monochrome1(ds: pydicom.Dataset) -> None:
        ds.PhotometricInterpretation = "MONOCHROME1"

    [inverted] = read_dicom(rewrite_dicom(source, tmp_path / "m1.dcm", monochrome1))

    # Signed 16-bit: the stored range -32768…32767 is mirrored, so v → -1 - v.
    np.testing.assert_array_equal(inverted.pixels, -1 - normal.pixels)
    darkest, brightest = (
        np.unravel_index(normal.pixels.argmax(), (64, 64)),
        np.unravel_index(normal.pixels.argmin(), (64, 64)),
    )
    shown = inverted.display()
    assert shown[brightest] > shown[darkest], "the lowest stored value is the brightest in MONOCHROME1"
    # The file's window (600/1600) still shows what it means: the MONOCHROME2 picture, inverted.
    assert inverted.windows == (Window(-601.0, 1600.0, "DICOM 1"),)
    expected = 255 - apply_window(normal.pixels, Window(600.0, 1600.0)).astype(int)
    assert np.abs(shown.astype(int) - expected).max() <= 1
    assert any("MONOCHROME1" in note for note in inverted.notes)


def test_real_monochrome1_radiograph_is_inverted() -> None:
    path = pydicom_file("RG3_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert (ds.PhotometricInterpretation, int(ds.BitsStored), int(ds.PixelRepresentation)) == ("MONOCHROME1", 10, 0)
    stored = ds.pixel_array.astype(np.float32)

    [image] = read_dicom(path)

    np.testing.assert_array_equal(image.pixels, 1023 - stored)
    assert image.default_window() == Window(1023 - 550.0, 1024.0, "DICOM 1")
    expected = 255 - apply_window(stored, Window(550.0, 1024.0)).astype(int)
    assert np.abs(image.display().astype(int) - expected).max() <= 1


def test_monochrome1_ct_keeps_hu(ct_small: Path, tmp_path: Path) -> None:
    [normal] = read_dicom(ct_small)

    def monochrome1(ds: pydicom.Dataset) -> None:
        ds.PhotometricInterpretation = "MONOCHROME1"

    [image] = read_dicom(rewrite_dicom(ct_small, tmp_path / "m1.dcm", monochrome1))

    assert image.hu
    np.testing.assert_array_equal(image.pixels, normal.pixels)
    volume = only_series(tmp_path / "m1.dcm").load_volume()
    np.testing.assert_array_equal(volume.voxels[0], normal.pixels)


def test_file_without_file_meta_is_read_with_the_syntax_it_was_parsed_with() -> None:
    """OT-PAL-8-face.dcm has no file meta information (ACR-NEMA style), so no Transfer Syntax UID."""
    path = pydicom_file("OT-PAL-8-face.dcm")
    ds = pydicom.dcmread(path, force=True)
    assert "TransferSyntaxUID" not in ds.file_meta
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    colours = apply_color_lut(ds.pixel_array, ds).astype(np.float64)
    scale = 257 if colours.max() > 255 else 1

    [image] = read_dicom(path)

    assert image.pixels.shape == (480, 640)
    np.testing.assert_allclose(image.pixels, colours @ LUMA / scale, atol=1e-3)


def test_header_reads_without_decoding(dicom_series_files: list[Path]) -> None:
    head = read_header(dicom_series_files[0])
    assert head.has_pixels and head.transfer_syntax == JPEG2000Lossless
    assert (head.rows, head.columns, head.frame_count) == (512, 512, 1)
    assert head.pixel_spacing == pytest.approx((0.9765625, 0.9765625))
    assert head.frames[0].position == pytest.approx((-249.51171875, -437.51171875, -766.5))
