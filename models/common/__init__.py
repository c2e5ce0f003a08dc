"""Shared data loading, degradation and export helpers for the bundled models' training scripts."""
