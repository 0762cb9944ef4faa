"""A vertebra's diagnosis as the classifier's target: one 0/1 entry per class in ``CLASS_CODES`` order (the five
diseases, then NORMAL, which is 1 exactly when no disease is present)."""

from __future__ import annotations

import numpy as np

from core.annotations.model import CLASS_CODES, DISEASES, Disease


def label_vector(diseases: frozenset[Disease]) -> np.ndarray:
    vector = np.zeros(len(CLASS_CODES), dtype=np.float32)
    for i, disease in enumerate(DISEASES):
        vector[i] = disease in diseases
    vector[-1] = not diseases
    return vector
