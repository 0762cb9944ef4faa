"""The state of a review session that is not Qt: what the desktop workspace shows and edits.

- :mod:`~core.review.session`: one reader's review of a study (per-slice edit stacks, autosave, read-only mode).
- :mod:`~core.review.journal`: the crash-recovery journal, written before every save.
- :mod:`~core.review.lock`: the per-reader study lock (the same reader opening a study twice is warned).
- :mod:`~core.review.status` and :mod:`~core.review.summary`: per-slice status, findings, low confidence and
  reader disagreement; :mod:`~core.review.filters` selects slices by them.
- :mod:`~core.review.confidence`: the rule for the model's unsure boxes (the "?" and "Low confidence").
- :mod:`~core.review.box_edits`: editing a model box (taken into the reader's result), levels along the spine, Tab's
  order, and which of the model's results the reader's boxes repeat.
- :mod:`~core.review.preferences`: per-user settings (reader identity, recent studies), with platformdirs.
- :mod:`~core.review.findings` and :mod:`~core.review.export`: the CSV of findings and the labelme export.
- :mod:`~core.review.models`: the study's active model, found without loading it, and loading it.
- :mod:`~core.review.opening`: turning DICOM, NIfTI or image folders into a study to review.
"""
