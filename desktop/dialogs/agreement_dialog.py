"""The readers' agreement: per class Fleiss' kappa of all readers, Krippendorff's alpha (missing ratings allowed)
and Cohen's kappa of each pair, each with its 95 % interval; box agreement (mean IoU of matched boxes) and the
detection agreement rate; each reader against the consensus as it stands (sensitivity and specificity per class,
Wilson intervals); and each reader's progress."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from PySide6 import QtWidgets

from core.consensus.agreement import CLASSES

_STYLE = ("<style>table{border-collapse:collapse;margin-bottom:8px} td,th{border:1px solid #bbb;padding:2px 6px}"
          "th{background:#eee} td{text-align:right} td.name{text-align:left}</style>")


def _number(value: Any, digits: int = 2) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def _ci(interval: Any) -> str:
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return ""
    return f" <small>[{_number(interval[0])}, {_number(interval[1])}]</small>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td class='name'>{cells[0]}</td>" if i == 0 else f"<td>{c}</td>"
                                    for i, c in enumerate(cells)) + "</tr>" for cells in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def kappa_html(stats: Mapping[str, Any]) -> str:
    fleiss = stats.get("fleiss_kappa_detail", {})
    alpha = stats.get("krippendorff_alpha_detail", {})
    cohen = stats.get("cohen_kappa", {})
    pairs = list(cohen)
    rows = []
    for code in CLASSES:
        estimate = fleiss.get(code, {})
        row = [code, _number(estimate.get("kappa")) + _ci(estimate.get("ci95")),
               _number(alpha.get(code, {}).get("alpha")) + _ci(alpha.get(code, {}).get("ci95"))]
        row += [_number(cohen[p].get(code, {}).get("kappa")) + _ci(cohen[p].get(code, {}).get("ci95")) for p in pairs]
        rows.append(row)
    readers = len(stats.get("readers", []))
    fully = fleiss.get("NORMAL", {}).get("subjects", 0)
    rated = alpha.get("NORMAL", {}).get("units", 0)
    return ("<h3>Agreement per class</h3>"
            + _table(["class", f"Fleiss' kappa ({fully} vertebrae)", f"Krippendorff's alpha ({rated})",
                      *[f"Cohen {p}" for p in pairs]], rows)
            + f"<p><small>Fleiss' kappa over the {fully} vertebrae all {readers} readers drew; Krippendorff's alpha "
              f"over the {rated} two or more drew (a reader with no box or no file there gives no rating, so it stays "
              "defined when a reader has read fewer slices); Cohen's kappa over the vertebrae both drew. 95 % "
              "intervals: percentile bootstrap over cases, inside [-1, 1]. – where undefined (all ratings the "
              "same).</small></p>")


def box_html(stats: Mapping[str, Any]) -> str:
    boxes = stats.get("box_agreement", {})
    rows = [[escape(pair), _number(v.get("mean_iou"), 3), str(v.get("pairs", 0))]
            for pair, v in boxes.get("per_pair", {}).items()]
    return ("<h3>Box agreement</h3>"
            f"<p>Mean IoU of matched boxes <b>{_number(boxes.get('mean_iou'), 3)}</b> "
            f"({boxes.get('matched_pairs', 0)} pairs); vertebra detection agreement rate "
            f"<b>{_number(boxes.get('detection_agreement_rate'), 3)}</b> ({boxes.get('found_by_all', 0)} of "
            f"{boxes.get('groups', 0)} vertebrae drawn by every reader).</p>"
            + _table(["readers", "mean IoU", "pairs"], rows))


def consensus_html(stats: Mapping[str, Any]) -> str:
    against = stats.get("reader_vs_consensus", {})
    slices = against.get("slices_with_consensus", 0)
    if not slices:
        return "<h3>Readers against the consensus</h3><p>No slice has a consensus yet.</p>"
    codes = [c for c in CLASSES if c != "NORMAL"]
    rows = []
    for reader, per_class in against.get("readers", {}).items():
        for measure in ("sensitivity", "specificity"):
            rows.append([f"{escape(reader)} {measure}"]
                        + [_number(per_class[c][measure]["value"]) + _ci(per_class[c][measure]["ci95"])
                           for c in codes])
    return (f"<h3>Readers against the consensus</h3><p>{slices} slices with a consensus (as it stands now); Wilson "
            "95 % intervals.</p>" + _table(["reader", *codes], rows))


def progress_html(progress: Mapping[str, Mapping[str, int]]) -> str:
    rows = [[escape(reader), f"{t['cases_done']} / {t['cases']}", f"{t['annotated']} / {t['slices']}",
             str(t["reviewed"])] for reader, t in progress.items()]
    return "<h3>Reading progress</h3>" + _table(["reader", "cases done", "slices annotated", "reviewed"], rows)


def statistics_html(stats: Mapping[str, Any], progress: Mapping[str, Mapping[str, int]]) -> str:
    counts = stats.get("vertebrae", {})
    disputes = stats.get("disagreements", {})
    head = (f"<p>Readers {escape(', '.join(stats.get('readers', [])))} on {stats.get('slices', 0)} slices of "
            f"{stats.get('cases', 0)} cases: {counts.get('groups', 0)} vertebrae, {counts.get('unanimous', 0)} "
            f"unanimous, {counts.get('majority', 0)} majority, {counts.get('conflict', 0)} conflict, "
            f"{counts.get('missing', 0)} missing for a reader; {counts.get('boxes_differ', 0)} drawn differently; "
            f"<b>{disputes.get('open', 0)} open disagreements</b> of {disputes.get('total', 0)}.</p>")
    return _STYLE + head + kappa_html(stats) + box_html(stats) + consensus_html(stats) + progress_html(progress)


class AgreementDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Agreement statistics")
        self.resize(820, 640)
        self.text = QtWidgets.QTextBrowser()
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.close)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        self.statistics: dict[str, Any] = {}

    def show_statistics(self, stats: Mapping[str, Any], progress: Mapping[str, Mapping[str, int]]) -> None:
        self.statistics = dict(stats)
        self.text.setHtml(statistics_html(stats, progress))
