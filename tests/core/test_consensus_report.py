"""The report files: the CSV lists, agreement.json, and a self-contained HTML page."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from core.annotations.model import Disease
from core.consensus.agreement import agreement_statistics
from core.consensus.check import check_study
from core.consensus.report import csv_text, write_report
from core.errors import FileWriteError
from core.progress import run
from tests.core.test_consensus_helpers import column, edit, make_study, write_all


def study_with_two_disagreements(tmp_path):
    study = make_study(tmp_path / "study", cases=2, slices=1)
    write_all(study, column(5, {1: ["OVCF"]}))
    edit(study, "r2", "case-0001", "s001", lambda v: v.__setitem__(1, v[1].with_changes(diseases=frozenset())))
    edit(study, "r3", "case-0002", "s001", lambda v: v.__setitem__(
        3, v[3].with_changes(diseases=frozenset({Disease.KD, Disease.OVCF}))))
    return study


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_the_report_files(tmp_path):
    study = study_with_two_disagreements(tmp_path)
    check = run(check_study(study))
    stats = agreement_statistics(check, bootstrap=50)
    files = write_report(tmp_path / "out", check, stats, decisions={("case-0002", "s001", 4): "reader r1"},
                         notes=["a <note> & more"], title="Check <1>")
    disagreements = read_csv(files.disagreements)
    assert [(r["case"], r["vertebra"], r["status"], r["label_r1"], r["label_r2"], r["label_r3"], r["majority"],
             r["decision"]) for r in disagreements] == [
        ("case-0001", "2", "majority", "OVCF", "NORMAL", "OVCF", "OVCF", ""),
        ("case-0002", "4", "majority", "NORMAL", "NORMAL", "OVCF+KD", "NORMAL", "reader r1"),
    ]
    assert disagreements[1]["flags_differ"] == "OVCF KD" and disagreements[1]["level"] == "L2"
    rows = read_csv(files.inconsistencies)
    assert [(r["reader"], r["class"], r["kind"], r["reader_value"], r["majority_value"]) for r in rows] == [
        ("r2", "OVCF", "label", "no", "yes"),
        ("r3", "OVCF", "label", "yes", "no"),
        ("r3", "KD", "label", "yes", "no"),
    ]
    agreement = json.loads(files.agreement.read_text())
    assert set(agreement["fleiss_kappa"]) >= {"OVCF", "OF", "SN", "KD", "PS"}
    assert agreement["vertebrae"]["disagreements"] == 2
    page = files.html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # no external assets
    assert "<script" not in page and "<link" not in page
    assert "a &lt;note&gt; &amp; more" in page and "Check &lt;1&gt;" in page
    assert "Fleiss" in page and "Cohen" in page and "mean IoU of matched boxes" in page
    assert page.count("<svg class=\"boxes\"") == 2 and "reader r1" in page
    kappa = agreement["fleiss_kappa"]["OVCF"]
    assert f"{kappa:.3f}" in page


def test_the_html_is_capped_but_the_csv_lists_every_disagreement(tmp_path, monkeypatch):
    import core.consensus.report as report

    monkeypatch.setattr(report, "HTML_ROWS", 1)
    study = study_with_two_disagreements(tmp_path)
    check = run(check_study(study))
    files = write_report(tmp_path / "out", check, agreement_statistics(check, bootstrap=0))
    assert len(read_csv(files.disagreements)) == 2
    page = files.html.read_text()
    assert page.count("<svg class=\"boxes\"") == 1 and "disagreements.csv lists all 2" in page


def test_missing_files_are_listed_in_the_report(tmp_path):
    study = study_with_two_disagreements(tmp_path)
    study.reader_path("r3", "case-0001", "s001").unlink()
    check = run(check_study(study))
    files = write_report(tmp_path / "out", check, agreement_statistics(check, bootstrap=0))
    assert "r3 has no annotation for case-0001/s001" in files.html.read_text()


def test_csv_text_quotes_what_needs_quoting():
    text = csv_text(["a", "b"], [{"a": 'x, "y"', "b": 1, "ignored": 2}])
    assert text == 'a,b\n"x, ""y""",1\n'


def test_each_reader_has_its_own_colour_and_line_style():
    from core.consensus.styles import reader_style

    readers = ["r1", "r2", "r3", "r4"]
    styles = [reader_style(readers, r) for r in readers]
    assert len({s.colour for s in styles}) == 4 and len({s.dash for s in styles}) == 4
    assert reader_style(readers, "r2") == reader_style(["r1", "r2"], "r2")
    assert all(len(s.dash) % 2 == 0 for s in styles)  # dash and gap pairs


def test_a_report_that_fails_leaves_the_earlier_report_whole(tmp_path, monkeypatch):
    """The page cannot be rendered, or its file is a folder: the earlier tables, JSON and page are all as they were,
    not new tables beside an old page."""
    import core.consensus.report as report

    study = study_with_two_disagreements(tmp_path)
    check = run(check_study(study))
    stats = agreement_statistics(check, bootstrap=0)
    files = write_report(tmp_path / "out", check, stats)
    for path in (files.disagreements, files.inconsistencies, files.agreement, files.html):
        path.write_text("earlier")

    def broken(*_args, **_kwargs):
        raise ValueError("cannot render")

    monkeypatch.setattr(report, "render_html", broken)
    with pytest.raises(ValueError, match="cannot render"):
        write_report(tmp_path / "out", check, stats)
    monkeypatch.undo()
    files.html.unlink()
    files.html.mkdir()
    with pytest.raises(FileWriteError, match="is a folder"):
        write_report(tmp_path / "out", check, stats)
    assert [p.read_text() for p in (files.disagreements, files.inconsistencies, files.agreement)] == ["earlier"] * 3
    assert sorted(p.name for p in files.folder.iterdir()) == ["agreement.json", "disagreements.csv",
                                                               "inconsistencies.csv", "report.html"]  # no temporary
