"""Vertebra Review core: imaging, annotations, models, training, evaluation and consensus (no Qt)."""

__version__ = "0.1.0"
