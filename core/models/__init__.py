"""Models: the vertebra detector, the disease classifier, the diagnosis pipeline, packages and the registry."""
