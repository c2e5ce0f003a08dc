"""Shared data loading, degradation and export helpers, and the training skeleton (runner.py), of the bundled models' training scripts."""
