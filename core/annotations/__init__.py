"""The annotation data model, LabelMe JSON reading and writing, box geometry, and undoable edit commands."""
