"""A synthetic spine CT phantom: sagittal slices with known vertebrae, levels and diseases, and simulated readers.

No public dataset carries the paper's labels, so the demo study, the tests, the benchmarks and the training engines
use this phantom. It is a demo data source: a model trained on it is a demo model, not a clinical one.
"""
