"""The retrain panel: what is being trained and on which device, a progress bar with the time left, live curves of
the training loss and of the validation metrics (pyqtgraph), Cancel, and at the end the new model against the
active one and whether it was activated or kept as a candidate."""

from __future__ import annotations

from html import escape
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from core.training.retrain_progress import KEY_METRIC, METRIC_NAMES, RetrainTracker, format_duration

COMPONENT_COLOURS = {"detector": "#0072B2", "classifier": "#D55E00"}
#: Line styles of the validation curves: the gate's metric solid with markers, the error rates dashed and dotted.
METRIC_STYLES = {"fp_rate": QtCore.Qt.PenStyle.DashLine, "fn_rate": QtCore.Qt.PenStyle.DotLine}
_STEPS = 1000


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title, color="k", size="9pt")
    plot.setLabel("bottom", "epoch", color="k")
    plot.setLabel("left", y_label, color="k")
    plot.showGrid(x=True, y=True, alpha=0.25)
    legend = plot.addLegend(offset=(-4, 4), labelTextColor="k", labelTextSize="8pt", verSpacing=-6)
    legend.setColumnCount(2)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.getAxis("bottom").enableAutoSIPrefix(False)  # epoch numbers as they are, never "epoch (x0.001)"
    plot.setXRange(0, 1, padding=0)
    plot.setMinimumHeight(150)
    plot.setMouseEnabled(x=False, y=False)
    return plot


def gate_html(result: dict[str, Any]) -> str:
    """The new model against the active one, per component, and the verdict (for the panel and the versions)."""
    rows = []
    for gate in result.get("gate", []):
        active = gate.get("active")
        against = "no active model" if active is None else f"{active:.3f}"
        verdict = "not worse" if gate.get("passed") else "worse"
        rows.append(f"<tr><td>{escape(str(gate.get('component')))}</td><td>{escape(str(gate.get('metric')))}</td>"
                    f"<td><b>{gate.get('new', 0.0):.3f}</b></td><td>{against}</td><td>{verdict}</td></tr>")
    if result.get("activated"):
        previous = escape(str(result.get("previous")))
        verdict = (f"<b>{escape(result['model_id'])} is now the active model</b> (it was {previous}; "
                   "Model versions › Roll back undoes this).")
    else:
        verdict = (f"<b>{escape(result.get('model_id', '?'))} is kept as a candidate</b>: it is worse than the active "
                   f"model {escape(str(result.get('previous')))} by more than the margin, which stays active. "
                   "You can still activate it in Model versions.")
    table = ("<table cellspacing='0' cellpadding='3' border='1'><tr><th>component</th><th>metric</th><th>new</th>"
             "<th>active</th><th>gate</th></tr>" + "".join(rows) + "</table>") if rows else ""
    return f"<p>{verdict}</p>{table}"


class RetrainPanel(QtWidgets.QWidget):
    cancelRequested = QtCore.Signal()
    versionsRequested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QtWidgets.QLabel("No retrain yet: Model › Retrain… trains a new version from the reviewed and "
                                        "agreed slices.")
        self.heading.setWordWrap(True)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, _STEPS)
        self.progress.setValue(0)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.notes = QtWidgets.QLabel()
        self.notes.setStyleSheet("color: #D55E00")
        self.notes.setWordWrap(True)
        self.result = QtWidgets.QLabel("The new model against the active one shows here when the retrain ends.")
        self.result.setWordWrap(True)
        self.result.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        self.result.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.cancel = QtWidgets.QPushButton("Cancel the retrain")
        self.cancel.setEnabled(False)
        self.versions = QtWidgets.QPushButton("Model versions…")
        self._plots: tuple[pg.PlotWidget, pg.PlotWidget] | None = None  # made when first needed (70 ms of startup)
        self._charts = QtWidgets.QHBoxLayout()
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._epochs = 1
        self._setup_layout()
        self.cancel.clicked.connect(self.cancelRequested)
        self.versions.clicked.connect(self.versionsRequested)

    def _setup_layout(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.heading)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel)
        row.addWidget(self.versions)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.notes)
        row = QtWidgets.QHBoxLayout()
        row.addLayout(self._charts, 6)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self.result)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        row.addWidget(scroll, 2)
        layout.addLayout(row, 1)

    def _made_plots(self) -> tuple[pg.PlotWidget, pg.PlotWidget]:
        """The two charts, made the first time they are shown or drawn on: most sessions never retrain, and
        making them costs a tenth of the window's start."""
        if self._plots is None:
            loss = _plot("Training loss", "loss")
            metric = _plot("Validation (per epoch)", "score")
            metric.setYRange(0.0, 1.02, padding=0)
            self._charts.addWidget(loss, 1)
            self._charts.addWidget(metric, 1)
            self._plots = (loss, metric)
            for plot in self._plots:
                plot.setXRange(0, self._epochs, padding=0.02 if self._epochs > 1 else 0)
        return self._plots

    @property
    def loss_plot(self) -> pg.PlotWidget:
        return self._made_plots()[0]

    @property
    def metric_plot(self) -> pg.PlotWidget:
        return self._made_plots()[1]

    def showEvent(self, event) -> None:
        self._made_plots()
        super().showEvent(event)

    # -- a run ------------------------------------------------------------------------------------------------------
    def start(self, heading: str, details: str = "", *, epochs: int = 1) -> None:
        """A new run: ``heading`` says what trains where; ``details`` (rich text) what it learns from; ``epochs``
        the most epochs a component trains (the charts' x-axis runs from 0 to that)."""
        self.heading.setText(heading)
        self.progress.setValue(0)
        self.status.setText("Starting the training process …")
        self.status.setStyleSheet("")
        self.notes.clear()
        self.result.setText(details)
        self.cancel.setEnabled(True)
        for plot in (self.loss_plot, self.metric_plot):
            plot.clear()
        self._curves.clear()
        self._set_epochs(epochs)

    def _set_epochs(self, epochs: int) -> None:
        """Both charts from epoch 0 to ``epochs`` (components train one after the other, each from 0), with a
        margin of 2 % so that the ticks at 0 and at the last epoch are labelled too."""
        self._epochs = max(1, int(epochs))
        for plot in (self.loss_plot, self.metric_plot):
            plot.setXRange(0, self._epochs, padding=0.02)

    def epoch_axis(self) -> tuple[tuple[float, float], str]:
        """The loss chart's x range and its axis label as drawn (for tests)."""
        axis = self.loss_plot.getAxis("bottom")
        low, high = self.loss_plot.getViewBox().viewRange()[0]
        return (low, high), axis.labelString()

    def show_progress(self, tracker: RetrainTracker) -> None:
        self.progress.setValue(round(tracker.fraction * _STEPS))
        elapsed = format_duration(tracker.elapsed_seconds())
        self.status.setText(f"{tracker.stage_text}  ·  {elapsed} elapsed  ·  {tracker.time_left().text()}")
        epochs = max(tracker.epochs.values())
        if epochs != self._epochs:
            self._set_epochs(epochs)
        self.notes.setText("\n".join(tracker.notes))
        for component, curves in tracker.curves.items():
            colour = COMPONENT_COLOURS.get(component, "#000000")
            self._curve(self.loss_plot, f"loss:{component}", component, colour).setData(
                [p[0] for p in curves.loss], [p[1] for p in curves.loss])
            for name, points in curves.metrics.items():
                if name not in METRIC_NAMES or name == "val_loss":
                    continue
                key_metric = name == KEY_METRIC.get(component)
                label = f"{component} {METRIC_NAMES[name]}"
                item = self._curve(self.metric_plot, f"{component}:{name}", label, colour, symbol=key_metric,
                                   style=METRIC_STYLES.get(name, QtCore.Qt.PenStyle.SolidLine))
                item.setData([p[0] for p in points], [p[1] for p in points])

    def _curve(self, plot: pg.PlotWidget, key: str, name: str, colour: str, *, symbol: bool = False,
               style: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine) -> pg.PlotDataItem:
        if key not in self._curves:
            pen = pg.mkPen(colour, width=2, style=style)
            options: dict[str, Any] = {"pen": pen, "name": name}
            if symbol:
                options.update(symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=colour)
            self._curves[key] = plot.plot([], [], **options)
        return self._curves[key]

    def curve_data(self, key: str) -> tuple[list[float], list[float]]:
        """The points of one curve (``loss:detector``, ``detector:ap50`` …), for tests."""
        item = self._curves.get(key)
        if item is None:
            return [], []
        xs, ys = item.getData()
        return ([] if xs is None else [float(x) for x in xs]), ([] if ys is None else [float(y) for y in ys])

    def finish(self, text: str, *, result: dict[str, Any] | None = None, failed: bool = False) -> None:
        self.cancel.setEnabled(False)
        if result is not None:
            self.progress.setValue(_STEPS)
        self.status.setText(text)
        self.status.setStyleSheet("color: #D55E00" if failed else "")
        self.result.setText(gate_html(result) if result is not None else "")
