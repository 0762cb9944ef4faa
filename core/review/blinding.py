"""Blinding as one reader's review workspace applies it (Qt-free): until the reader marks a case done, they see only
their own annotations of it: not the other readers', not the consensus, and not whether the readers disagree.

The rules are those of :mod:`core.consensus.reading`; this keeps the reader's done marks at hand (one read of
``done.json`` per change, not one per slice) and hides what a case-list summary would give away.
"""

from __future__ import annotations

from dataclasses import replace

from core.consensus.check import study_readers
from core.consensus.reading import done_cases, mark_case_done
from core.errors import ConsensusError
from core.review.status import SliceStatus
from core.review.summary import SliceSummary
from core.study.layout import Study
from core.study.slice_key import SliceKey, slice_key


class ReaderBlinding:
    """What ``reader`` may see in ``study``. ``problem`` says why the done marks could not be read (then every
    case counts as not done, the safe side)."""

    def __init__(self, study: Study, reader: str) -> None:
        self.study = study
        self.reader = reader
        self.problem: str | None = None
        self._done: set[str] = set()
        self.reload()

    @property
    def on(self) -> bool:
        return bool(self.study.settings.blinding)

    def reload(self) -> None:
        try:
            self._done = set(done_cases(self.study, self.reader))
            self.problem = None
        except ConsensusError as exc:
            self._done, self.problem = set(), str(exc)

    def is_done(self, case: str) -> bool:
        return case in self._done

    def blinded(self, case: str) -> bool:
        """Whether the other readers' annotations and the consensus of ``case`` are hidden from the reader."""
        return self.on and case not in self._done

    def mark_done(self, case: str, *, allow_incomplete: bool = False) -> None:
        """Mark the reader's case done (raises :class:`ConsensusError` when slices are unannotated and
        ``allow_incomplete`` is false)."""
        mark_case_done(self.study, self.reader, case, allow_incomplete=allow_incomplete)
        self.reload()

    def is_compared(self) -> bool:
        """Whether the reader is one of the readers the consensus compares (reads the study's reader folders)."""
        return self.reader in study_readers(self.study).readers

    def summary(self, key: SliceKey, summary: SliceSummary, model_id: str | None, *,
                compared: bool | None = None) -> SliceSummary:
        """The summary as the reader may see it: in a blinded case no disagreement mark, and no findings taken from
        the consensus (which a summary shows when the reader has no file and the model no result); ``blinded`` says
        so, so that a filter can tell why it finds nothing. A consensus in progress shows how far it is ("3/10
        decided", which hints at how many vertebrae are in dispute) only to someone who is not one of the compared
        readers (the coordinator); a reader sees their own status until the consensus is final."""
        if not self.blinded(slice_key(key).case):
            return summary
        compared = self.is_compared() if compared is None else compared  # the caller's, for a whole list
        progress = None if compared else summary.consensus_progress
        hidden = replace(summary, disagreement=False, consensus_progress=progress, blinded=True)
        from_consensus = summary.status is SliceStatus.CONSENSUS or summary.consensus_progress is not None
        if from_consensus and not self._own_or_model(key, model_id):
            hidden = replace(hidden, diseases=frozenset(), boxes=0)
        return hidden

    def _own_or_model(self, key: SliceKey, model_id: str | None) -> bool:
        if self.study.reader_path(self.reader, *key).is_file():
            return True
        return bool(model_id) and self.study.prediction_path(model_id, *key).is_file()
