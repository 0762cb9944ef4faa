"""Evaluation: detection and classification metrics, and reports with plots."""
