"""PACS in and out: a per-user list of DICOM servers, finding and retrieving studies into the anonymising import,
and sending each case's results back as a DICOM Structured Report (TID 1500) that references the original images.

- :mod:`~core.pacs.servers`: the server list (names, DICOMweb URLs or DIMSE addresses; never passwords).
- :mod:`~core.pacs.credentials`: passwords from an environment variable or the system keyring.
- :mod:`~core.pacs.connection`: one client per server kind (:mod:`~core.pacs.dicomweb`, :mod:`~core.pacs.dimse`).
- :mod:`~core.pacs.query`: what a search asks for and what it finds.
- :mod:`~core.pacs.retrieve`: ``get``: download with resume, then :func:`core.study.importer.import_source`.
- :mod:`~core.pacs.references`: the DICOM key (kept outside the study): each case's original UIDs and patient tags.
- :mod:`~core.pacs.coding`: the coded concepts the reports use (SNOMED CT, DICOM, and our private scheme).
- :mod:`~core.pacs.report`: building and reading back one case's Comprehensive 3D SR (highdicom).
- :mod:`~core.pacs.send`: ``send``: every case's report, stored with STOW-RS or C-STORE.

Nothing here imports Qt; network work is bounded by the server's stated timeout.
"""
