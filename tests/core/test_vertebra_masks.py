"""Vertebra label maps: the two numberings, names, tables, bad masks; bodies in front of the canal; the slab rules;
the level counting across a vertebra a slab leaves out; the level figures."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from core.annotations.model import Box
from core.annotations.vertebral_bodies import find_bodies, slab_boxes
from core.errors import NiftiReadError
from core.evaluation.levels import level_report
from core.imaging.image import Volume
from core.imaging.reformat import SagittalReformat
from core.imaging.vertebra_masks import (
    TOTALSEGMENTATOR_LABELS,
    VERSE_LABELS,
    VertebraMasks,
    read_vertebra_masks,
    vertebra_name,
)
from core.models.levels import assign_levels, spine_positions


def test_the_two_numberings():
    assert (VERSE_LABELS[1], VERSE_LABELS[8], VERSE_LABELS[19], VERSE_LABELS[20], VERSE_LABELS[25]) == (
        "C1", "T1", "T12", "L1", "L6")
    assert VERSE_LABELS[28] == "T13"
    ts = TOTALSEGMENTATOR_LABELS
    assert (ts[26], ts[27], ts[31], ts[32], ts[43], ts[44]) == ("S1", "L5", "L1", "T12", "T1", "C7")
    assert TOTALSEGMENTATOR_LABELS[50] == "C1" and TOTALSEGMENTATOR_LABELS[25] == "sacrum"


@pytest.mark.parametrize(("name", "level"), [("vertebrae_L1", "L1"), ("L3_seg", "L3"), ("vertebrae_T12", "T12"),
                                             ("sacrum", "sacrum"), ("vertebrae_S1", "S1"), ("rib_left_1", None),
                                             ("kidney_left", None), ("spinal_cord", None), ("T13", "T13")])
def test_structure_names(name, level):
    assert vertebra_name(name) == level


def _save(array: np.ndarray, path, affine=None):
    nib.save(nib.Nifti1Image(array, np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine), path)
    return path


def test_a_label_table_beside_the_mask_names_the_labels(tmp_path):
    labels = np.zeros((6, 6, 6), np.uint8)
    labels[1:3, 1:3, 1:3], labels[3:5, 3:5, 3:5] = 7, 9
    _save(labels, tmp_path / "mask.nii.gz")
    (tmp_path / "structures.csv").write_text("id,structure\n7,vertebrae_L2\n9,liver\n")
    masks = read_vertebra_masks(tmp_path / "mask.nii.gz")
    assert masks.names == {7: "L2"} and "labels 9 are not vertebrae (by the label table" in masks.notes[0]
    (tmp_path / "structures.csv").write_text("number,what\n7,L2\n")
    with pytest.raises(NiftiReadError, match="needs an id and a structure"):
        read_vertebra_masks(tmp_path / "mask.nii.gz")


@pytest.mark.parametrize(("content", "problem"), [
    (np.full((4, 4, 4), 1.5, np.float32), "not whole numbers"),
    (np.full((4, 4, 4), np.nan, np.float32), "not whole numbers"),
    (np.full((4, 4), 1, np.uint8), "three dimensions"),
])
def test_masks_that_are_not_label_maps(tmp_path, content, problem):
    path = _save(content, tmp_path / "x_seg-vert_msk.nii.gz")
    with pytest.raises(NiftiReadError, match=problem):
        read_vertebra_masks(path)


def test_truncated_and_hostile_mask_files(tmp_path):
    good = _save(np.ones((8, 8, 8), np.uint8), tmp_path / "good_seg-vert_msk.nii.gz")
    cut = tmp_path / "cut_seg-vert_msk.nii.gz"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(NiftiReadError, match=str(cut.name)):
        read_vertebra_masks(cut)
    (tmp_path / "text_seg-vert_msk.nii.gz").write_text("not a nifti")
    with pytest.raises(NiftiReadError, match="not a readable NIfTI"):
        read_vertebra_masks(tmp_path / "text_seg-vert_msk.nii.gz")
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 1024))
    header.set_data_dtype(np.uint8)
    bomb = tmp_path / "bomb_seg-vert_msk.nii"
    bomb.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 64)  # declares 4 G voxels, holds 64 bytes
    with pytest.raises(NiftiReadError, match="the limit is"):
        read_vertebra_masks(bomb)
    (tmp_path / "labels.txt").write_text("1 L1")
    with pytest.raises(NiftiReadError, match="must be a NIfTI file"):
        read_vertebra_masks(tmp_path / "labels.txt")


def _vertebra(shape=(40, 60, 30)) -> np.ndarray:
    """A vertebra on a 1 mm grid (x left-right, y back-to-front, z up): a body in front, a ring of bone around a
    canal behind it (z 10-19 only, the pedicles' height), a spinous process at the back."""
    v = np.zeros(shape, dtype=bool)
    v[8:32, 30:55, 5:25] = True  # body: y 30-54
    v[14:26, 12:30, 10:20] = True  # pedicles and laminae
    v[17:23, 20:30, 10:20] = False  # the canal: y 20-29, so the body starts at y 30
    v[18:22, 2:12, 8:18] = True  # spinous process
    return v


def test_the_body_is_the_part_in_front_of_the_canal(tmp_path):
    masks = VertebraMasks(_vertebra().astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse")
    [body] = find_bodies(masks)
    assert body.method == "in front of the canal" and body.level == "L1" and not body.truncated
    assert body.offset == (8, 30, 5) and body.mask.shape == (24, 25, 20)


def test_a_body_segmented_as_its_shell_is_not_mistaken_for_the_canal(tmp_path):
    v = _vertebra()
    v[10:30, 33:52, 7:23] = False  # hollow body: only a 2-3 mm shell is labelled
    masks = VertebraMasks(v.astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse")
    [body] = find_bodies(masks)
    assert body.method == "in front of the canal" and body.offset[1] == 30  # from the canal, not the hollow


def _reformat(shape=(40, 60, 30)) -> SagittalReformat:
    return SagittalReformat(Volume(np.zeros(shape, np.float32), np.eye(4), hu=True))


def test_the_slab_rule_and_the_cut_off_rule(tmp_path):
    v = _vertebra()
    masks = VertebraMasks(v.astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse")
    [body] = find_bodies(masks)
    reformat = _reformat()
    [(found, box)] = slab_boxes(reformat, [body], 20, 3.0)
    # sagittal image: column = 59 - y (anterior left), row = 29 - z (superior up)
    assert found is body and box == Box(5.0, 5.0, 30.0, 25.0)
    assert slab_boxes(reformat, [body], 7, 3.0) == []  # body in under half of the slab's thickness
    edge = v.copy()
    edge[8:11, 38:, :] = False  # the body's left edge is only its back 8 mm: 160 of its 500 mm² section
    [narrow] = find_bodies(VertebraMasks(edge.astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse"))
    assert slab_boxes(reformat, [narrow], 9, 3.0) == []  # under 40 % of its largest section
    assert len(slab_boxes(reformat, [narrow], 12, 3.0)) == 1
    cut = v[:, :, 16:]  # the scan starts high in the body: 9 mm of its 25 mm depth left, not enough
    [half] = find_bodies(VertebraMasks(cut.astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse"))
    assert half.truncated and not half.boxed and slab_boxes(_reformat(cut.shape), [half], 20, 3.0) == []
    most = v[:, :, 8:]  # 17 mm of it left: kept, and said to be cut off
    [kept] = find_bodies(VertebraMasks(most.astype(np.uint16) * 20, {20: "L1"}, np.eye(4), tmp_path, "verse"))
    assert kept.truncated and kept.boxed and len(slab_boxes(_reformat(most.shape), [kept], 20, 3.0)) == 1


def test_two_labels_on_one_body_give_one_box(tmp_path):
    v = _vertebra()
    labels = v.astype(np.uint16) * 20
    piece = np.zeros_like(v)
    piece[14:26, 36:48, 10:18] = True
    labels[piece] = 19  # a piece of L1's body labelled T12
    [t12, l1] = find_bodies(VertebraMasks(labels, {19: "T12", 20: "L1"}, np.eye(4), tmp_path, "verse"))
    assert [b.name for b, _ in slab_boxes(_reformat(), [t12, l1], 20, 3.0)] == ["L1"]


def test_levels_count_across_a_vertebra_the_slab_leaves_out():
    heights = [28, 30, 32, 34, 36, 38]
    tops = np.cumsum([0, *[h + 6 for h in heights[:-1]]])
    boxes = np.array([[10, t, 50, t + h] for t, h in zip(tops, heights, strict=True)], dtype=float)
    shown = np.delete(boxes, 4, axis=0)  # L2 is not on this slab
    assert list(spine_positions(shown)) == [0, 1, 2, 3, 5]
    assert assign_levels(shown, (0, "T11")) == ["T11", "T12", "L1", "L2", "L4"][:4] + ["L4"]
    assert assign_levels(shown, (4, "L4")) == ["T11", "T12", "L1", "L2", "L4"]


def test_the_level_report_counts_right_and_wrong():
    boxes = np.array([[10, 0, 50, 30], [10, 36, 50, 66], [10, 72, 50, 102]], dtype=float)
    cases = {"a": [(boxes, ["T12", "L1", "L2"]), (boxes + [1, 0, 1, 0], ["T12", "L1", None])]}
    report = level_report(cases)
    assert report["set_level"] == {"right": 13, "total": 13, "rate": 1.0}
    assert report["propagated"] == {"right": 5, "total": 5, "rate": 1.0}
    wrong = {"a": [(boxes, ["T12", "L2", "L3"])]}  # a label map that skips L1
    assert level_report(wrong)["set_level"] == {"right": 5, "total": 9, "rate": 0.5556}  # off by one above L2
