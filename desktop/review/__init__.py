"""The review workspace: the reader's own reading of a study, its model, and what is shown of the others."""
