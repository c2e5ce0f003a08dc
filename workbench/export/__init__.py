"""Exports: masks (PNG/TIFF/NIfTI), overlays, detections (JSON/CSV/COCO), per-image prediction files."""
