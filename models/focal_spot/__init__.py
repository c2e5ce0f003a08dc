"""Focal-spot detector: synthetic bright/dark round and oval blobs in real images (YOLOv8 output layout)."""
