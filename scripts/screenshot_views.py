"""Render the main window's orthogonal views offscreen into a PNG (the docs/USER_GUIDE.md screenshots).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_views.py VOLUME OUT.png \\
        [--layout 2x2] [--sphere-mm 12] [--size 1600x1000]

``VOLUME`` is anything ``workbench`` opens (NIfTI, a DICOM folder, .npy). ``--sphere-mm`` paints a ball of
that radius at the crosshair into label 1 through the document's label map (one undo step, as a brush
would), to show the labels in every view. ``--mni OUT.nii.gz`` first writes nilearn's bundled MNI152 T1
template (no download) with every third axial slice kept, so 1 x 1 x 3 mm voxels show the physical aspect.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_mni(path: Path) -> Path:
    import nibabel as nib
    import numpy as np
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=1)
    data = np.asarray(img.dataobj, dtype=np.float32)[:, :, ::3]
    affine = img.affine.copy()
    affine[:3, 2] *= 3.0
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volume", nargs="?")
    parser.add_argument("out")
    parser.add_argument("--layout", default="2x2", choices=("1", "1+2", "2x2"))
    parser.add_argument("--sphere-mm", type=float, default=0.0)
    parser.add_argument("--size", default="1600x1000")
    parser.add_argument("--mni", help="write the anisotropic MNI152 sample here and open it")
    args = parser.parse_args(argv)
    volume = write_mni(Path(args.mni)) if args.mni else Path(args.volume)

    import numpy as np

    from workbench.gui.qt import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    from workbench.gui.main_window import MainWindow

    window = MainWindow(restore_layout=False, persist=False)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    settled: list[bool] = []
    window.load_settled.connect(settled.append)
    window.open_path(volume)
    while not settled:
        app.processEvents()
    if not settled[0]:
        print(f"screenshot_views: {volume}: {window.last_error}", file=sys.stderr)
        return 2
    area = window.view_area
    area.set_layout(args.layout)
    image, labels = window.document.image, window.document.labels
    if args.sphere_mm > 0:
        z, y, x = np.ogrid[:image.shape[0], :image.shape[1], :image.shape[2]]
        cz, cy, cx = area.crosshair.position
        sz, sy, sx = image.spacing
        ball = ((z - cz) * sz) ** 2 + ((y - cy) * sy) ** 2 + ((x - cx) * sx) ** 2 <= args.sphere_mm ** 2
        box = (slice(0, image.shape[0]), slice(0, image.shape[1]), slice(0, image.shape[2]))
        with labels.edit("Sphere") as e:
            e.paint(box, ball, 1)
        labels.set_label(1, name="sphere")
    for _ in range(10):
        app.processEvents()
    if not window.grab().save(args.out):
        print(f"screenshot_views: {args.out}: could not write", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
