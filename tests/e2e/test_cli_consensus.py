"""``vertebra-review consensus`` end to end on small phantom studies: the report, the summary, --propose, and bad
input (a missing reader file, image sizes that differ, an unknown reader)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.annotations.labelme_io import read_labelme
from core.consensus.session import ConsensusSession
from core.progress import run
from core.study.layout import Study
from desktop.cli import main
from tests.core.test_consensus_helpers import phantom_study

REPO = Path(__file__).resolve().parents[2]
RICH = {"OVCF": 0.2, "OF": 0.1, "SN": 0.08, "KD": 0.06, "PS": 0.06}  # every class shows on a small study


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """Three cases x two slices with the phantom's readers, the truth consensus kept (external, final)."""
    root = tmp_path_factory.mktemp("cli-consensus") / "study"
    phantom_study(root, cases=3, slices=2, seed=11, disagreement=0.15, keep_consensus=True, prevalence=RICH)
    return root


def consensus(capsys, *args) -> tuple[int, str, str]:
    code = main(["consensus", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_report_on_a_phantom_study(phantom, tmp_path, capsys):
    report = tmp_path / "report"
    code, out, err = consensus(capsys, phantom, "--report", report, "--bootstrap", "200")
    assert code == 0, err
    assert "compared 6 slices of 3 cases, readers r1, r2, r3 (IoM > 0.5)" in out
    assert "Fleiss' kappa: OVCF" in out and "box agreement: mean IoU" in out
    assert f"report: {report / 'report.html'}" in out
    assert {p.name for p in report.iterdir()} == {"agreement.json", "disagreements.csv", "inconsistencies.csv",
                                                   "report.html"}
    agreement = json.loads((report / "agreement.json").read_text())
    for code_name in ("OVCF", "OF", "SN", "KD", "PS"):
        assert isinstance(agreement["fleiss_kappa"][code_name], float), code_name
        assert -1.0 <= agreement["fleiss_kappa"][code_name] <= 1.0
    rows = list(csv.DictReader(io.StringIO((report / "disagreements.csv").read_text())))
    assert len(rows) == agreement["vertebrae"]["disagreements"] > 0
    assert f"disagreements: 0 open of {len(rows)} (0 decided, {len(rows)} on slices whose consensus is final" in out
    assert agreement["disagreements"] == {"total": len(rows), "decided": 0, "locked": len(rows), "open": 0}
    assert "Krippendorff's alpha: OVCF" in out
    assert all(r["decision"] == "external consensus" for r in rows)  # the phantom's truth is the consensus
    assert agreement["reader_vs_consensus"]["slices_with_consensus"] == 6
    assert "Readers against the consensus" in (report / "report.html").read_text()


def test_propose_writes_majorities_and_never_over_a_finalised_consensus(phantom, tmp_path, capsys):
    study_root = tmp_path / "study"
    shutil.copytree(phantom, study_root)
    shutil.rmtree(study_root / "consensus")
    code, out, err = consensus(capsys, study_root, "--report", tmp_path / "r1", "--propose", "--bootstrap", "0")
    assert code == 0, err
    assert "proposed:" in out and "on 6 slices written to consensus/" in out
    study = Study.open(study_root)
    session = run(ConsensusSession.open(study))
    methods = {r.method for key in session.slice_keys() for r in session.state(key).resolved.values()}
    assert methods == {"proposed"}
    # The readers settle one slice and finalise it; a second --propose must leave it exactly as it is.
    key = session.slice_keys()[0]
    session.accept_unanimous([key])
    for ref in [r for r in session.disagreements() if r.key == key]:
        session.take_reader(ref, "r1")
    session.finalise(key)
    path = study.consensus_path(*key)
    before = path.read_bytes()
    code, out, err = consensus(capsys, study_root, "--report", tmp_path / "r2", "--propose", "--bootstrap", "0")
    assert code == 0, err
    assert f"skipped 1 slices whose consensus is finalised: {key[0]}/{key[1]}" in out
    assert path.read_bytes() == before and read_labelme(path).reviewed is True
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r2" / "disagreements.csv").read_text())))
    assert {r["decision"] for r in rows if (r["case"], r["slice"]) == key} <= {"reader r1 (final)"}


def test_a_missing_reader_file_gives_a_partial_consensus_and_a_warning(phantom, tmp_path, capsys):
    root = tmp_path / "study"
    shutil.copytree(phantom, root)
    Study.open(root).reader_path("r2", "case-0002", "s001").unlink()
    code, _out, err = consensus(capsys, root, "--report", tmp_path / "report", "--bootstrap", "0")
    assert code == 3
    assert "warning: r2 has no annotation for case-0002/s001: the consensus of this slice is partial" in err
    assert (tmp_path / "report" / "report.html").is_file()


def test_image_sizes_that_differ_are_an_error_naming_the_files(phantom, tmp_path, capsys):
    root = tmp_path / "study"
    shutil.copytree(phantom, root)
    path = Study.open(root).reader_path("r3", "case-0001", "s002")
    data = json.loads(path.read_text())
    data["imageWidth"] += 7
    path.write_text(json.dumps(data))
    code, _out, err = consensus(capsys, root, "--report", tmp_path / "report")
    assert code == 1
    [line] = [x for x in err.splitlines() if "error" in x]  # one line, after the progress lines
    assert line.startswith("vertebra-review: error: the image sizes of slice case-0001/s002 differ")
    assert str(path) in err and str(Study.open(root).reader_path("r1", "case-0001", "s002")) in err


def test_an_unknown_reader_is_a_clear_error(phantom, tmp_path, capsys):
    code, _out, err = consensus(capsys, phantom, "--readers", "r1,r7", "--report", tmp_path / "report")
    assert code == 1 and "unknown reader 'r7'; the study's readers are: r1, r2, r3" in err
    assert not (tmp_path / "report").exists()


def test_two_of_the_readers_and_iou_matching(phantom, tmp_path, capsys):
    code, out, err = consensus(capsys, phantom, "--readers", "r1,r3", "--report", tmp_path / "report",
                               "--match", "iou", "--threshold", "0.3", "--bootstrap", "0")
    assert code == 0, err
    assert "readers r1, r3 (IoU > 0.3)" in out
    agreement = json.loads((tmp_path / "report" / "agreement.json").read_text())
    assert list(agreement["cohen_kappa"]) == ["r1-r3"] and agreement["match"]["measure"] == "iou"


def test_bad_options_and_not_a_study(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["consensus", str(tmp_path), "--report", str(tmp_path / "r"), "--threshold", "1.5"])
    assert exited.value.code == 2
    code, _out, err = consensus(capsys, tmp_path / "nothing", "--report", tmp_path / "r")
    assert code == 1 and "not a study folder" in err


@pytest.mark.slow
def test_as_a_user_runs_it(phantom, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "desktop.cli", "consensus", str(phantom), "--report",
                             str(tmp_path / "report"), "--bootstrap", "100"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    assert "disagreements:" in result.stdout
