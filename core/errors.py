"""Typed errors raised by ``core``.

Every error carries the file it concerns (when there is one) and a message that says what was wrong and, where it
helps, what to do. ``str(error)`` gives the one line the command line prints.
"""

from __future__ import annotations

from os import PathLike


class VertebraReviewError(Exception):
    """Base of every error that ``core`` raises on purpose."""

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class FileWriteError(VertebraReviewError):
    """A file could not be written (read-only folder, full disk, …). Nothing was half-written."""


class ImageReadError(VertebraReviewError):
    """An image file or folder could not be read."""


class ImageTooLargeError(ImageReadError):
    """An image claims more pixels than the limits allow (a decompression bomb): refused before it is decoded."""


class DicomReadError(ImageReadError):
    """A DICOM file is corrupt, truncated, not an image, or cannot be decoded."""


class NotDicomError(DicomReadError):
    """The file is not DICOM at all (empty, or neither a DICOM preamble nor image tags)."""


class UnsupportedTransferSyntaxError(DicomReadError):
    """The pixel data is compressed with a transfer syntax that no installed plugin decodes."""


class NiftiReadError(ImageReadError):
    """A NIfTI file is corrupt or not a usable volume."""


class GeometryError(VertebraReviewError):
    """Image geometry is inconsistent (irregular slice spacing, missing orientation, …)."""


class AnnotationFileError(VertebraReviewError):
    """A LabelMe JSON file is not valid, or does not fit its image."""


class AnnotationEditError(VertebraReviewError):
    """An edit command cannot be applied to the current annotation."""


class StudyError(VertebraReviewError):
    """A study folder is missing, malformed, or an operation on it is not possible."""


class ModelPackageError(VertebraReviewError):
    """A model package is missing, corrupt, of another kind, or does not fit this version of the app."""


class TrainingError(VertebraReviewError):
    """Training cannot go on (a non-finite loss, no training data, …); nothing was published."""


class DeviceError(VertebraReviewError):
    """The requested compute device is not available."""


class ReviewError(VertebraReviewError):
    """A review action is not possible here (nothing to accept, a slice that cannot be edited, …)."""


class ConsensusError(VertebraReviewError):
    """The readers' annotations cannot be compared or merged (unknown reader, image sizes that differ, a conflict
    that needs an explicit choice, a finalised consensus that cannot be changed, …)."""
