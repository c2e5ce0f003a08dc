"""Workbench: desktop image-analysis workbench."""
__version__ = "0.1.0"
