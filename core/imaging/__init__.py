"""Reading CT images (DICOM, NIfTI, PNG, JPEG), HU and windowing, sagittal reformat, and letterbox geometry."""
