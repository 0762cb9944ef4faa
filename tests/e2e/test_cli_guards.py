"""Guards found by a hostile-input sweep of the command line (2026-12-05): what would have deleted or overwritten a
person's files, filled the memory, or failed only after an hour's training is refused at once, with a message that
names the option or the file, and nothing else is touched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.annotations.labelme_io import read_labelme
from core.errors import ModelPackageError
from core.models.classifier import VertebraClassifier
from core.models.detector import VertebraDetector
from core.progress import run
from core.synthetic.generate import SynthOptions, generate_study
from desktop.cli import main


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("guards") / "study"
    run(generate_study(root, SynthOptions(cases=2, seed=3, slices_per_case=1, readers=0)))
    return root


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """The command's exit code and what it wrote to stderr. argparse's refusals exit 2 through SystemExit."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def test_a_model_id_with_a_path_is_refused_and_the_folder_it_names_kept(study: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    precious = out / "precious"
    precious.mkdir(parents=True)
    (precious / "data.txt").write_text("a reader's notes")
    for kind in ("detector", "classifier"):
        code, err = cli(capsys, "train", kind, study, "--out", out, "--preset", "cpu", "--epochs", "1",
                        "--device", "cpu", "--model-id", "../precious")
        assert code == 1
        assert "model id '../precious' is not allowed" in err
    assert (precious / "data.txt").read_text() == "a reader's notes"
    assert sorted(p.name for p in out.iterdir()) == ["precious"]  # no checkpoint folder, no package
    assert not (tmp_path / "precious").exists()


def test_an_existing_model_id_or_a_file_for_the_models_folder_is_refused_before_training(study: Path, tmp_path: Path,
                                                                                       capsys) -> None:
    out = tmp_path / "models"
    (out / "taken").mkdir(parents=True)
    code, err = cli(capsys, "train", "classifier", study, "--out", out, "--model-id", "taken", "--device", "cpu")
    assert code == 1 and f"{out / 'taken'}: exists already" in err
    assert not (out / ".training").exists()
    a_file = tmp_path / "models.txt"
    a_file.write_text("not a folder")
    code, err = cli(capsys, "train", "detector", study, "--out", a_file, "--device", "cpu")
    assert code == 1 and f"{a_file}: the models folder is a file" in err
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize(("args", "said"), [
    (("train", "detector", "S", "--out", "O", "--epochs", "0"), "argument --epochs: 0 must be from 1 to 1000"),
    (("train", "classifier", "S", "--out", "O", "--lr", "nan"), "argument --lr: nan must be a number above 0"),
    (("train", "classifier", "S", "--out", "O", "--lr", "-1"), "argument --lr: -1 must be a number above 0"),
    (("train", "detector", "S", "--out", "O", "--batch-size", "0"), "argument --batch-size: 0 must be from 1"),
    (("train", "detector", "S", "--out", "O", "--workers", "-1"), "argument --workers: -1 must be from 0"),
    (("train", "detector", "S", "--out", "O", "--input-size", "1000000"), "argument --input-size: 1000000 must be"),
    (("train", "classifier", "S", "--out", "O", "--context", "-1"), "argument --context: -1 must be a number from 0"),
    (("train", "classifier", "S", "--out", "O", "--patches-per-box", "0"), "argument --patches-per-box: 0 must"),
    (("train", "classifier", "S", "--out", "O", "--epochs", "two"), "argument --epochs: 'two' is not a whole number"),
    (("retrain", "S", "--margin", "nan"), "argument --margin: nan must be a number from 0 to 1"),
    (("detect", "I", "--model", "M", "--out", "O", "--threshold", "2"), "argument --threshold: 2 must be"),
    (("evaluate", "detection", "P", "T", "--report", "R", "--threshold", "nan"), "argument --threshold: nan must"),
    (("consensus", "S", "--report", "R", "--bootstrap", "-5"), "argument --bootstrap: -5 must be from 0 to 100000"),
    (("bench", "synth", "--size", "smoke", "--repeats", "0"), "argument --repeats: 0 must be from 1 to 1000"),
    (("import", "S", "T", "--count", "0"), "argument --count: 0 must be from 1 to 500"),
    (("import", "S", "T", "--step-mm", "nan"), "argument --step-mm: nan must be a number above 0"),
    (("import", "S", "T", "--thickness-mm", "-2"), "argument --thickness-mm: -2 must be a number above 0"),
])
def test_a_number_out_of_range_is_refused_by_the_option_it_came_with(args, said, capsys) -> None:
    code, err = cli(capsys, *args)
    assert code == 2
    assert said in err
    assert "internal error" not in err


def test_detect_keeps_a_persons_annotation_beside_the_image_and_replaces_its_own(tiny_model_study: Path,
                                                                               tmp_path: Path, capsys) -> None:
    detector = tiny_model_study / "models" / "tiny-v1" / "detector"
    folder = tmp_path / "labelme"
    folder.mkdir()
    shutil.copy(tiny_model_study / "images" / "case-0001" / "s001.png", folder / "a.png")
    shutil.copy(tiny_model_study / "images" / "case-0001" / "s002.png", folder / "b.png")
    shutil.copy(tiny_model_study / "consensus" / "case-0001" / "s001.json", folder / "a.json")
    by_hand = (folder / "a.json").read_bytes()
    code, err = cli(capsys, "detect", folder / "a.png", folder / "b.png", "--model", detector, "--out", folder,
                    "--device", "cpu", "--views", "1")
    assert code == 3  # b done, a skipped
    assert f"skipped {folder / 'a.json'}: holds a person's annotation" in err
    assert (folder / "a.json").read_bytes() == by_hand
    assert read_labelme(folder / "b.json").model == detector.name  # the package's folder names the model
    code, _ = cli(capsys, "detect", folder / "b.png", "--model", detector, "--out", folder, "--device", "cpu",
                  "--views", "1")
    assert code == 0  # the model's own prediction may be written again
    (folder / "b.json").write_text("{ not json")
    code, err = cli(capsys, "detect", folder / "b.png", "--model", detector, "--out", folder, "--device", "cpu",
                    "--views", "1")
    assert code == 1 and "is there already and is not a model's prediction" in err
    assert (folder / "b.json").read_text() == "{ not json"


def test_diagnose_into_a_studys_consensus_keeps_it(tiny_model_study: Path, tmp_path: Path, capsys) -> None:
    study = tmp_path / "study"
    shutil.copytree(tiny_model_study, study)
    before = {p: p.read_bytes() for p in (study / "consensus").rglob("*.json")}
    code, err = cli(capsys, "diagnose", study, "--models", study / "models", "--out", study / "consensus",
                    "--device", "cpu", "--views", "1")
    assert code == 1
    assert err.count("holds a person's annotation") == len(before) > 0
    assert {p: p.read_bytes() for p in (study / "consensus").rglob("*.json")} == before


def test_an_import_never_appends_its_key_to_a_file_that_is_not_a_key_file(study: Path, tmp_path: Path,
                                                                         capsys) -> None:
    image = study / "images" / "case-0001" / "s001.png"
    other = tmp_path / "other-study.json"
    shutil.copy(study / "study.json", other)
    code, err = cli(capsys, "import", image, tmp_path / "new", "--key-file", other)
    assert code == 1 and f"{other}: the key file is there already but is not a key CSV" in err
    assert other.read_bytes() == (study / "study.json").read_bytes()
    assert not (tmp_path / "new").exists()
    binary = tmp_path / "key.png"
    shutil.copy(image, binary)
    code, err = cli(capsys, "import", image, tmp_path / "new2", "--key-file", binary)
    assert code == 1 and f"{binary}: the key file is there already but is not UTF-8 text" in err
    key = tmp_path / "key.csv"
    assert cli(capsys, "import", image, tmp_path / "one", "--key-file", key)[0] == 0
    assert cli(capsys, "import", image, tmp_path / "two", "--key-file", key)[0] == 0
    lines = key.read_text().splitlines()
    assert lines[0] == "case,slice,source" and len(lines) == 3  # an import's own key file takes more rows


def test_evaluating_a_missing_predictions_folder_is_an_error_not_a_score_of_nothing(study: Path, tmp_path: Path,
                                                                                  capsys) -> None:
    for kind in ("detection", "classification"):
        code, err = cli(capsys, "evaluate", kind, tmp_path / "typo", study / "consensus", "--report",
                        tmp_path / kind)
        assert code == 1 and f"{tmp_path / 'typo'}: no folder of predictions here" in err
        assert not (tmp_path / kind).exists()


def test_models_with_a_mistyped_study_makes_nothing(tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "models", tmp_path / "nosuch", "add", "v1", "--detector", tmp_path / "pkg")
    assert code == 1 and f"{tmp_path / 'nosuch'}: no such study or models folder" in err
    assert not (tmp_path / "nosuch").exists()


@pytest.mark.parametrize(("kind", "edit", "said"), [
    ("detector", lambda a: a["geometry"].update(size=100_000), "the input size is a whole number from 32 to 4096"),
    ("detector", lambda a: a["geometry"].update(side=0), "the input letterbox's side is a whole number"),
    ("detector", lambda a: a.update(fpn_channels=-1), "fpn_channels is a whole number from 8 to 1024, not -1"),
    ("detector", lambda a: a.update(fpn_channels=1e9), "fpn_channels is a whole number"),
    ("detector", lambda a: a.update(box_detections_per_img=-1), "box_detections_per_img is a whole number"),
    ("detector", lambda a: a.update(duplicate_iom=float("nan")), "duplicate_iom is a number from 0 to 1"),
    ("classifier", lambda a: a["patch"].update(size=-3), "the patch size is a whole number from 32 to 1024, not -3"),
    ("classifier", lambda a: a["patch"].update(size=0), "the patch size"),
    ("classifier", lambda a: a["patch"].update(canvas=0), "the patch canvas"),
    ("classifier", lambda a: a["patch"].update(count=10_000), "the test-time patches per box"),
])
def test_a_manifest_with_absurd_sizes_is_refused_by_name(tiny_model_study: Path, tmp_path: Path, kind, edit,
                                                         said) -> None:
    """Before: an input of 100,000 pixels filled 22 GB and was killed; a negative width failed inside PyTorch."""
    source = tiny_model_study / "models" / "tiny-v1" / kind
    package = tmp_path / kind
    shutil.copytree(source, package)
    manifest = json.loads((package / "manifest.json").read_text())
    edit(manifest["architecture"])
    (package / "manifest.json").write_text(json.dumps(manifest))
    opener = VertebraDetector if kind == "detector" else VertebraClassifier
    with pytest.raises(ModelPackageError, match=said) as refused:
        opener.from_package(package, device="cpu")
    assert str(package) in str(refused.value)


def test_export_of_a_reader_or_model_the_study_lacks_is_refused(study: Path, tmp_path: Path, capsys) -> None:
    code, err = cli(capsys, "export", study, tmp_path / "out", "--reader", "nobody")
    assert code == 1 and "the study has no reader 'nobody'; its readers are: none" in err
    code, err = cli(capsys, "export", study, tmp_path / "out", "--model", "nomodel")
    assert code == 1 and "the study has no predictions of a model 'nomodel'" in err
    assert not (tmp_path / "out").exists()


def test_demo_build_into_a_file_or_with_a_swapped_package_stops_before_the_synthesis(tiny_model_study: Path,
                                                                                    tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "demo.txt"
    a_file.write_text("keep")
    code, err = cli(capsys, "demo", "build", a_file)
    assert code == 1 and f"{a_file}: the demo is written into a new folder, and this is a file" in err
    assert a_file.read_text() == "keep"
    models = tiny_model_study / "models" / "tiny-v1"
    code, err = cli(capsys, "demo", "build", tmp_path / "demo", "--detector", models / "classifier",
                    "--classifier", models / "detector")
    assert code == 1 and str(models / "classifier") in err and "classifier" in err
    assert not (tmp_path / "demo").exists()


def test_models_list_says_when_the_active_set_is_not_there(tiny_model_study: Path, tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_study / "models", models)
    code, err = cli(capsys, "models", models)
    assert code == 0 and "not here" not in err
    (models / "active").write_text(json.dumps({"id": "nope"}))
    code, err = cli(capsys, "models", models)
    assert code == 0 and f"{models}: the active model set is 'nope', which is not here" in err


def test_export_renders_a_truncated_png_again_or_skips_the_slice(study: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "study"
    shutil.copytree(study, copy)
    png = copy / "images" / "case-0001" / "s001.png"
    whole = png.read_bytes()
    png.write_bytes(whole[: len(whole) // 2])
    assert cli(capsys, "export", copy, tmp_path / "a")[0] == 0
    assert (tmp_path / "a" / "case-0001" / "s001.png").read_bytes().endswith(b"IEND\xaeB`\x82")  # from the DICOM
    dicom = png.with_suffix(".dcm")
    dicom.write_bytes(dicom.read_bytes()[:1000])
    code, err = cli(capsys, "export", copy, tmp_path / "b")
    assert code == 3 and "skipped case-0001/s001" in err
    assert not (tmp_path / "b" / "case-0001" / "s001.png").exists()
    assert (tmp_path / "b" / "case-0002" / "s001.png").is_file()


def test_pacs_add_refuses_a_ca_file_without_a_certificate_and_saves_nothing(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("VERTEBRA_REVIEW_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    code, err = cli(capsys, "pacs", "add", "web", "--url", "https://pacs.example.org/dicom-web",
                    "--ca-bundle", tmp_path / "ca.pem")
    assert code == 1 and f"{tmp_path / 'ca.pem'}: holds no certificate" in err
    assert not (tmp_path / "config").exists() or not any((tmp_path / "config").rglob("*.json"))


def test_report_and_import_guards_on_the_command_line(study: Path, tmp_path: Path, capsys) -> None:
    """`report` of a reader's files needs --out; `import` of the study's own images is refused; a first import of
    nothing leaves no study (each with its message, status 1)."""
    readers = tmp_path / "people" / "case-0001"
    readers.mkdir(parents=True)
    for file in (study / "consensus" / "case-0001").glob("*.json"):
        shutil.copy(file, readers / file.name)
    code, err = cli(capsys, "report", tmp_path / "people")
    assert code == 1 and "people's annotations" in err and "give --out" in err
    assert sorted(p.name for p in (tmp_path / "people").iterdir()) == ["case-0001"]
    assert cli(capsys, "report", tmp_path / "people", "--out", tmp_path / "summary")[0] == 0
    assert (tmp_path / "summary" / "summary.json").is_file()
    code, err = cli(capsys, "import", study / "images" / "case-0001", study)
    assert code == 1 and "is inside the study" in err
    (tmp_path / "empty.png").write_bytes(b"")
    code, err = cli(capsys, "import", tmp_path / "empty.png", tmp_path / "new")
    assert code == 1 and "was not kept" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--cases", "0", "argument --cases: 0 must be from 1 to 100000"),
    ("--slices", "0", "argument --slices: 0 must be from 1 to 500"),
    ("--readers", "-1", "argument --readers: -1 must be from 0 to 9"),
    ("--disagreement", "2", "argument --disagreement: 2 must be a number from 0 to 0.89"),
    ("--workers", "-1", "argument --workers: -1 must be from 0 to 256"),
])
def test_synth_refuses_counts_out_of_range_by_their_option(tmp_path: Path, capsys, option, value, message) -> None:
    code, err = cli(capsys, "synth", tmp_path / "phantom", option, value)
    assert code == 2 and message in err and not (tmp_path / "phantom").exists()
