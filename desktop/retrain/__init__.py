"""Retraining in the app: the run in a child process, its progress, and the model versions."""
