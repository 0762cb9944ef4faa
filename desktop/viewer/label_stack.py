"""Where the label chips of one column go so that none covers another: each as near its box's centre as it can be,
in the order of the boxes along the spine (plain arithmetic on screen pixels; no Qt)."""

from __future__ import annotations

from collections.abc import Sequence


def stack_labels(wanted: Sequence[float], height: float, gap: float = 1.0) -> list[float]:
    """Centres for labels ``height`` tall that want to sit at ``wanted`` (screen y, any order): in the same order
    from top to bottom, at least ``height + gap`` apart, and as close to ``wanted`` as can be (least squares: a run
    of labels that would touch is centred on where its labels want to be)."""
    step = height + gap
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    runs: list[list[int]] = []  # runs of labels (indices into ``order``) set one ``step`` apart
    tops: list[float] = []  # the centre of each run's first label
    for position, index in enumerate(order):
        runs.append([position])
        tops.append(wanted[index])
        while len(runs) > 1 and tops[-2] + len(runs[-2]) * step > tops[-1]:
            run = runs.pop(-2) + runs.pop()
            tops[-2:] = [sum(wanted[order[p]] - k * step for k, p in enumerate(run)) / len(run)]
            runs.append(run)
    centres = [0.0] * len(wanted)
    for run, top in zip(runs, tops, strict=True):
        for k, position in enumerate(run):
            centres[order[position]] = top + k * step
    return centres
