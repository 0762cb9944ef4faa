"""The state of a review session that is not Qt: what the desktop workspace shows and edits.

- :mod:`~core.review.session`: one reader's review of a study (per-slice edit stacks, autosave, read-only mode).
- :mod:`~core.review.journal`: the crash-recovery journal, written before every save.
- :mod:`~core.review.lock`: the per-reader study lock (the same reader opening a study twice is warned).
- :mod:`~core.review.status` and :mod:`~core.review.summary`: per-slice status, findings, low confidence and
  reader disagreement; :mod:`~core.review.filters` selects slices by them.
- :mod:`~core.review.preferences`: per-user settings (reader identity, recent studies), with platformdirs.
- :mod:`~core.review.findings` and :mod:`~core.review.export`: the CSV of findings and the labelme export.
- :mod:`~core.review.models`: the study's active model, found without loading it, and loading it.
- :mod:`~core.review.opening`: turning DICOM, NIfTI or image folders into a study to review.
"""
