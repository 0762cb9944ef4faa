"""Where a review session's saves run: inline (the command line, the tests of core), or on one background thread
that the app gives a way back to its GUI thread.

A save is one atomic write of the reader's file. Edits of one slice made while its save runs are coalesced: only
the latest state is written next, never an older one after a newer. :meth:`SaveQueue.flush` waits until every
submitted state is written (or has failed), as closing a study does.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

from core.annotations.model import SliceAnnotation
from core.errors import FileWriteError, VertebraReviewError
from core.study.slice_key import SliceKey, slice_key

log = logging.getLogger(__name__)

Store = Callable[[SliceKey, SliceAnnotation], None]
Saved = Callable[[SliceKey, SliceAnnotation], None]
Failed = Callable[[SliceKey, VertebraReviewError], None]
#: Runs a callback on the thread that owns the session (the app's GUI thread); None runs it where the save ran.
Deliver = Callable[[Callable[[], None]], None]


_BACKGROUND: weakref.WeakSet[SaveQueue] = weakref.WeakSet()


def flush_all(timeout: float | None = 30.0) -> bool:
    """Wait until every background writer has written what it was given (the app's exit does this, so that a
    window closed by the system loses no edit); False when ``timeout`` ran out for one of them."""
    return all([saves.flush(timeout) for saves in list(_BACKGROUND)])


class SaveQueue:
    """``store(key, state)`` writes a state; ``saved``/``failed`` are told afterwards, through ``deliver``."""

    def __init__(self, store: Store, saved: Saved, failed: Failed, *, background: bool = False,
                 deliver: Deliver | None = None) -> None:
        self._store, self._saved, self._failed = store, saved, failed
        self._deliver = deliver or (lambda callback: callback())
        self._background = background
        self._pending: dict[SliceKey, SliceAnnotation] = {}
        self._busy = 0  # saves taken off the queue and not finished
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        if background:
            if not _BACKGROUND:
                atexit.register(flush_all)
            _BACKGROUND.add(self)

    @property
    def background(self) -> bool:
        return self._background

    def submit(self, key: SliceKey, state: SliceAnnotation) -> None:
        if not self._background:
            self._run(key, state)
            return
        with self._condition:
            if self._closed:
                raise RuntimeError("the save queue is closed")
            self._pending[key] = state  # replaces an older state of the slice not written yet
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="review-saves", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def saving(self) -> bool:
        """Whether a save is queued or running."""
        with self._condition:
            return bool(self._pending) or self._busy > 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted state is written or has failed; False when ``timeout`` ran out first."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, then stop the thread. Returns whether everything was written in time."""
        done = self.flush(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        return done

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                key = next(iter(self._pending))
                state = self._pending.pop(key)
                self._busy += 1
            try:
                self._run(key, state)
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def _run(self, key: SliceKey, state: SliceAnnotation) -> None:
        try:
            self._store(key, state)
        except VertebraReviewError as exc:
            self._deliver(lambda error=exc: self._failed(key, error))
            return
        except Exception as exc:
            if not self._background:
                raise
            # A bug must not stop the writer thread: every later edit would be lost. Say it as a failed save.
            log.exception("saving %s failed", key)
            error = FileWriteError(f"{slice_key(key).text} could not be saved ({type(exc).__name__}: {exc})")
            self._deliver(lambda: self._failed(key, error))
            return
        self._deliver(lambda: self._saved(key, state))
