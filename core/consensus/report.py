"""The consistency check report: ``disagreements.csv``, ``inconsistencies.csv``, ``agreement.json`` and
``report.html`` (one self-contained page: inline CSS, the boxes drawn as inline SVG, no external assets)."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.consensus.agreement import CLASSES
from core.consensus.check import ConsistencyCheck
from core.consensus.inconsistencies import (
    INCONSISTENCY_COLUMNS,
    GroupKey,
    counts_by_reader_and_class,
    disagreement_columns,
    disagreement_rows,
    inconsistency_rows,
)
from core.consensus.matching import VertebraGroup
from core.consensus.styles import reader_style
from core.evaluation.html import html_page, table
from core.fileio import atomic_write_together, json_bytes, text_bytes

#: The HTML lists at most this many disagreements; the CSV has them all.
HTML_ROWS = 400
_CSS = """<style>
.status-conflict { color: #b00020; font-weight: 600; } .status-majority { color: #8a5a00; }
.status-missing { color: #0b5394; } svg.boxes { background: #f7f7f7; border: 1px solid #ddd; }
.legend span { margin-right: 1.2em; white-space: nowrap; } td.labels { text-align: left; }
</style>"""


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    disagreements: Path
    inconsistencies: Path
    agreement: Path
    html: Path


def csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value + 0.0:.3f}".replace("-0.000", "0.000")
    return "–" if value is None else str(value)


def _ci(estimate: Mapping[str, Any], key: str = "ci95") -> str:
    interval = estimate.get(key)
    return "–" if not interval else f"{_fmt(interval[0])} to {_fmt(interval[1])}"


def boxes_svg(group: VertebraGroup, readers: Sequence[str], size: int = 72) -> str:
    """The readers' boxes of one group, each in its reader's colour and line style, around the group."""
    drawn = [(r, group.versions[r]) for r in readers if group.versions.get(r) is not None]
    xs = [c for _, v in drawn for c in (v.box.x1, v.box.x2)]
    ys = [c for _, v in drawn for c in (v.box.y1, v.box.y2)]
    pad = 0.15 * max(max(xs) - min(xs), max(ys) - min(ys))
    x0, y0 = min(xs) - pad, min(ys) - pad
    span = max(max(xs) - min(xs), max(ys) - min(ys)) + 2 * pad
    parts = []
    for reader, vertebra in drawn:
        style = reader_style(readers, reader)
        b = vertebra.box
        width = span / size * 1.6
        parts.append(f'<rect x="{b.x1 - x0:.1f}" y="{b.y1 - y0:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" '
                     f'fill="none" stroke="{style.colour}" stroke-width="{width:.2f}" '
                     f'stroke-dasharray="{_dasharray(style.dash, width)}"><title>{html.escape(reader)}</title></rect>')
    return (f'<svg class="boxes" width="{size}" height="{size}" viewBox="0 0 {span:.1f} {span:.1f}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')


def _dasharray(dash: tuple[float, ...], line_width: float) -> str:
    return " ".join(f"{p * line_width:.2f}" for p in dash) if dash else "none"


def _legend(readers: Sequence[str]) -> str:
    items = []
    for reader in readers:
        style = reader_style(readers, reader)
        line = (f'<svg width="34" height="10"><line x1="0" y1="5" x2="34" y2="5" stroke="{style.colour}" '
                f'stroke-width="2" stroke-dasharray="{_dasharray(style.dash, 2.0)}"/></svg>')
        items.append(f"<span>{line} {html.escape(reader)}</span>")
    return f'<p class="legend">{"".join(items)}</p>'


def _summary_section(check: ConsistencyCheck, stats: Mapping[str, Any], notes: Sequence[str]) -> str:
    counts = stats["vertebrae"]
    rows = [
        ("readers", ", ".join(check.readers)),
        ("matching", f"one to one (Hungarian), {check.settings.describe()}; boxes differ below IoU "
                     f"{check.settings.box_tolerance:g}"),
        ("cases / slices compared", f"{stats['cases']} / {stats['slices']}"),
        ("vertebra groups", counts["groups"]),
        ("unanimous", counts["unanimous"]),
        ("majority (more than half agree)", counts["majority"]),
        ("conflict (no majority)", counts["conflict"]),
        ("missing for some reader", counts["missing"]),
        ("boxes drawn differently", counts["boxes_differ"]),
        ("disagreements (vertebrae the readers do not agree on)", counts["disagreements"]),
        ("open disagreements: to resolve (not decided, slice not locked)", stats["disagreements"]["open"]),
        ("decided / on locked slices (final, or made outside the workflow)",
         f"{stats['disagreements']['decided']} / {stats['disagreements']['locked']}"),
        ("slices missing a reader's file", len({(c, s) for _, c, s in check.missing})),
        ("slices no reader has annotated", len(check.unread)),
    ]
    body = "<table><tbody>" + "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    ) + "</tbody></table>"
    if notes:
        body += "".join(f'<p class="notice">{html.escape(n)}</p>' for n in notes)
    return "<h2>Summary</h2>" + body


def _kappa_section(stats: Mapping[str, Any]) -> str:
    detail = stats["fleiss_kappa_detail"]
    alpha = stats["krippendorff_alpha_detail"]
    fleiss = [(code, detail[code]["kappa"], _ci(detail[code]), detail[code]["subjects"],
               detail[code]["positive_ratings"], detail[code]["observed_agreement"], alpha[code]["alpha"],
               _ci(alpha[code]), alpha[code]["units"]) for code in CLASSES]
    out = ["<h2>Agreement per class</h2>",
           f"<p>Fleiss' kappa of all readers over the vertebrae every reader drew, and Krippendorff's alpha (nominal) "
           f"over the vertebrae two or more readers drew (a reader without a box or a file there gives no rating). "
           f"Every 95 % interval is a percentile bootstrap over the {stats['cases']} cases, inside [-1, 1]. A dash "
           f"means undefined (every rating the same).</p>",
           table(["class", "Fleiss' kappa", "95 % CI", "vertebrae", "positive ratings", "observed agreement",
                  "Krippendorff's alpha", "95 % CI", "vertebrae"], fleiss)]
    pairs = list(stats["cohen_kappa"])
    rows = [[code, *(f"{_fmt(stats['cohen_kappa'][p][code]['kappa'])} ({_ci(stats['cohen_kappa'][p][code])})"
                     for p in pairs)] for code in CLASSES]
    out += ["<p>Cohen's kappa of each pair of readers over the vertebrae both drew (95 % bootstrap interval over "
            "cases).</p>", table(["class", *pairs], rows)]
    if stats["cases"] < 10:
        out.append(f'<p class="notice">Only {stats["cases"]} cases: the bootstrap intervals are rough.</p>')
    boxes = stats["box_agreement"]
    out += ["<h2>Box agreement</h2>",
            table(["measure", "value"], [
                ("mean IoU of matched boxes", boxes["mean_iou"]),
                *((f"mean IoU {pair}", v["mean_iou"]) for pair, v in boxes["per_pair"].items()),
                ("vertebra detection agreement rate (groups drawn by every reader)", boxes["detection_agreement_rate"]),
                ("groups drawn by every reader / all groups", f"{boxes['found_by_all']} / {boxes['groups']}"),
            ])]
    return "".join(out)


def _consensus_section(stats: Mapping[str, Any]) -> str:
    versus = stats["reader_vs_consensus"]
    if not versus["slices_with_consensus"]:
        return "<h2>Readers against the consensus</h2><p>No slice has a consensus yet.</p>"
    codes = [c for c in CLASSES if c != "NORMAL"]
    rows = []
    for reader, per_class in versus["readers"].items():
        for measure in ("sensitivity", "specificity"):
            rows.append([reader, measure, *(f"{_fmt(per_class[c][measure]['value'])} ({_ci(per_class[c][measure])})"
                                            for c in codes)])
    return (f"<h2>Readers against the consensus</h2><p>Over the {versus['slices_with_consensus']} slices with a "
            f"consensus file; Wilson 95 % intervals.</p>" + table(["reader", "", *codes], rows))


def _disagreement_section(check: ConsistencyCheck, rows: Sequence[Mapping[str, Any]],
                          inconsistencies: Sequence[Mapping[str, Any]]) -> str:
    counts = counts_by_reader_and_class(list(inconsistencies), check.readers)
    columns = [*[c for c in CLASSES if c != "NORMAL"], "no box", "extra box", "box"]
    out = ["<h2>Inconsistent annotations per reader and class</h2>",
           table(["reader", *columns, "total"],
                 [[r, *(cells.get(c, 0) for c in columns), sum(cells.values())] for r, cells in counts.items()])]
    out.append(f"<h2>Disagreements ({len(rows)})</h2>{_legend(check.readers)}")
    groups = {(s.case, s.slice_id, g.index): g for s, g in check.disagreements()}
    header = "".join(f"<th>{html.escape(h)}</th>" for h in
                     ["slice", "vertebra", "status", "what differs", *check.readers, "majority", "decision", "boxes"])
    body = []
    for row in rows[:HTML_ROWS]:
        group = groups[(row["case"], row["slice"], row["vertebra"])]
        labels = "".join(f'<td class="labels">{html.escape(str(row[f"label_{r}"]))}</td>' for r in check.readers)
        body.append(
            f"<tr><td>{html.escape(row['case'])}/{html.escape(row['slice'])}</td>"
            f"<td>{row['vertebra']} {html.escape(row['level'])}</td>"
            f'<td class="status-{row["status"]}">{html.escape(row["status"])}</td>'
            f"<td>{html.escape(row['kinds'].replace('+', ', '))}</td>{labels}"
            f"<td>{html.escape(row['majority'] or '–')}</td><td>{html.escape(row['decision'] or '–')}</td>"
            f"<td>{boxes_svg(group, check.readers)}</td></tr>"
        )
    out.append(f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>")
    if len(rows) > HTML_ROWS:
        out.append(f"<p>The first {HTML_ROWS} are shown; disagreements.csv lists all {len(rows)}.</p>")
    return "".join(out)


def _progress_section(stats: Mapping[str, Any]) -> str:
    progress = stats.get("reading_progress")
    if not progress:
        return ""
    rows = [(reader, f"{p['cases_done']} / {p['cases']}", f"{p['annotated']} / {p['slices']}",
             f"{p['reviewed']} / {p['slices']}") for reader, p in progress.items()]
    return "<h2>Reading progress</h2>" + table(["reader", "cases done", "slices annotated", "slices reviewed"], rows)


def _problems_section(check: ConsistencyCheck) -> str:
    items = [f"{reader} has no annotation for {case}/{slice_id}" for reader, case, slice_id in check.missing]
    items += [f"{path}: {why}" for path, why in check.skipped]
    if not items:
        return ""
    shown = "".join(f"<li>{html.escape(i)}</li>" for i in items[:200])
    more = f"<p>and {len(items) - 200} more.</p>" if len(items) > 200 else ""
    return f"<h2>Partial: files missing or unreadable</h2><ul>{shown}</ul>{more}"


def render_html(check: ConsistencyCheck, stats: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                inconsistencies: Sequence[Mapping[str, Any]], notes: Sequence[str] = (), title: str = "") -> str:
    body = [_CSS, _summary_section(check, stats, notes), _problems_section(check), _progress_section(stats),
            _kappa_section(stats),
            _consensus_section(stats), _disagreement_section(check, rows, inconsistencies)]
    return html_page(title or "Reader consistency check", body)


def write_report(folder: str | Path, check: ConsistencyCheck, stats: Mapping[str, Any], *,
                 decisions: Mapping[GroupKey, str] | None = None, notes: Sequence[str] = (),
                 title: str = "") -> ReportFiles:
    """Write the four report files into ``folder`` (created if needed), together: each is made in full first, so a
    failure (a file that cannot be rendered, a full disk) leaves an earlier report as it was, never new tables
    beside an old page."""
    folder = Path(folder)
    rows = disagreement_rows(check, decisions)
    inconsistencies = inconsistency_rows(check)
    files = ReportFiles(folder, folder / "disagreements.csv", folder / "inconsistencies.csv",
                        folder / "agreement.json", folder / "report.html")
    atomic_write_together({
        files.disagreements: text_bytes(csv_text(disagreement_columns(check), rows), files.disagreements),
        files.inconsistencies: text_bytes(csv_text(INCONSISTENCY_COLUMNS, inconsistencies), files.inconsistencies),
        files.agreement: json_bytes(dict(stats), files.agreement),
        files.html: text_bytes(render_html(check, stats, rows, inconsistencies, notes, title), files.html),
    })
    return files
