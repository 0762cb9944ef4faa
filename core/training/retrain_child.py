"""The body of the retraining child process. The app starts it (``desktop/workers.py`` is the only place that starts
processes) with a pipe, and a background thread relays what it sends:

- ``("progress", {"stage", "step", "total", "message", "metrics"})`` for every progress event;
- ``("result", {...})`` once, with the gate's decision, when the retrain finished;
- ``("error", "one line for people")`` when it failed (nothing was activated).

Cancel is a terminate of the process: nothing is activated before the gate, and publishing is an atomic rename, so
a killed child never leaves a partial model in use. A GPU's memory is freed when the process ends.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from core.errors import VertebraReviewError


def _send(connection: Connection, kind: str, payload: Any) -> None:
    try:
        connection.send((kind, payload))
    except (BrokenPipeError, OSError):  # the app went away: nothing to tell
        pass


def run_retrain(connection: Connection, study_root: str, options: dict[str, Any]) -> None:
    """Retrain ``study_root`` with ``options`` (the fields of RetrainOptions), reporting through ``connection``. A
    retrain already running is refused before the training code loads (seconds, not tens of seconds)."""
    from core.training.retrain_lock import RetrainLock

    try:
        RetrainLock(study_root).check_free()
        from core.training.retrain import RetrainOptions, retrain

        job = retrain(study_root, RetrainOptions(**options))
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                result = stop.value
                break
            _send(connection, "progress", {"stage": event.stage, "step": event.step, "total": event.total,
                                           "message": event.message, "metrics": dict(event.metrics)})
        _send(connection, "result", {
            "model_id": result.model_id, "activated": result.activated, "previous": result.previous,
            "description": result.describe(), "summary": result.summary.describe(),
            "gate": [asdict(g) for g in result.gate],
        })
    except VertebraReviewError as exc:
        _send(connection, "error", str(exc))
    except MemoryError:
        _send(connection, "error", "training ran out of memory; try a smaller batch or the CPU preset")
    except Exception as exc:  # noqa: BLE001 - reported to the app in one line; the traceback goes to the log
        traceback.print_exc()
        _send(connection, "error", f"training failed: {type(exc).__name__}: {exc}")
    finally:
        connection.close()
