"""Three-reader consensus (the paper's annotation workflow): independent reading with blinding, matching the readers'
boxes, the consistency check and its report, consulted co-annotation with provenance, and agreement statistics.

- :mod:`core.consensus.reading`: "case done" marks, what a reader may see, progress per reader and case.
- :mod:`core.consensus.matching`: one-to-one matching of the readers' boxes per slice into vertebra groups, and
  their classification (unanimous, majority, conflict, missing; per disease flag too).
- :mod:`core.consensus.check`: the consistency check over a study.
- :mod:`core.consensus.agreement`: Fleiss' and Cohen's kappa with confidence intervals, box agreement, each reader
  against the consensus.
- :mod:`core.consensus.record`: consensus files with their provenance (LabelMe JSON plus extra keys).
- :mod:`core.consensus.slice_state`: a slice's matched groups, its consensus record and the decision tied to each
  group, as the session and the counts see it.
- :mod:`core.consensus.session`: the co-annotation model a GUI drives (step through disagreements, resolve them).
- :mod:`core.consensus.counts`: the one definition of an *open* disagreement, and the counts every view shows.
- :mod:`core.consensus.inconsistencies` and :mod:`core.consensus.report`: the CSV lists, ``agreement.json`` and
  the self-contained HTML page.
- :mod:`core.consensus.styles`: each reader's colour and line style when their boxes are overlaid.
"""
