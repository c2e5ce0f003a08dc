"""Slice order along the slice normal, z spacing from the sorted positions, and the voxel-to-patient affine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .header import _Slice


# -- ordering and geometry -------------------------------------------------------------------------------
def _normal(iop: tuple[float, ...]) -> np.ndarray:
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def _order(folder: Path, members: list[_Slice], warnings: list[str]) -> tuple[list[_Slice], float | None]:
    """Sort slices; return them with the z spacing from positions (None when positions are unusable)."""
    positioned = all(m.ipp is not None and m.iop is not None for m in members)
    same_orientation = positioned and all(
        np.allclose(m.iop, members[0].iop, atol=1e-3) for m in members  # type: ignore[arg-type]
    )
    if len(members) == 1:
        return members, None
    if positioned and same_orientation:
        normal = _normal(members[0].iop)  # type: ignore[arg-type]
        for m in members:
            m.position = float(np.dot(normal, m.ipp))  # type: ignore[arg-type]
        members = sorted(members, key=lambda m: (m.position, m.instance if m.instance is not None else 0))
        steps = np.diff([m.position for m in members])
        if np.any(np.abs(steps) < 1e-4):
            dup = int(np.sum(np.abs(steps) < 1e-4))
            warnings.append(f"{dup} slices share a position with another (several acquisitions in one series?)")
            unique = steps[np.abs(steps) >= 1e-4]
            return members, (float(np.median(unique)) if unique.size else None)
        spacing = float(np.median(steps))
        if np.max(steps) - np.min(steps) > max(0.01, 0.1 * spacing):
            warnings.append(f"irregular slice spacing: {np.min(steps):.3g} to {np.max(steps):.3g} mm "
                            "(a missing slice, or a variable-pitch acquisition)")
        return members, spacing
    why = "slices have different orientations" if positioned else "slices have no ImagePositionPatient"
    warnings.append(f"{why}: ordered by InstanceNumber")
    return sorted(members, key=lambda m: (m.instance if m.instance is not None else 0, str(m.path))), None


def _affine(first: _Slice, spacing: tuple[float, float, float], members: list[_Slice]) -> np.ndarray:
    """(x, y, z) index of ``data[z, y, x]`` -> RAS+ mm (DICOM is LPS: x and y flip sign)."""
    dz, dy, dx = spacing
    aff = np.eye(4)
    if first.iop is None or first.ipp is None:
        aff[:3, :3] = np.diag([-dx, -dy, dz])
        return aff
    row, col = np.asarray(first.iop[:3]), np.asarray(first.iop[3:])
    normal = _normal(first.iop)
    if len(members) > 1 and members[-1].ipp is not None:
        step = (np.asarray(members[-1].ipp) - np.asarray(first.ipp)) / (len(members) - 1)
    else:
        step = normal * dz
    lps = np.column_stack([row * dx, col * dy, step, np.asarray(first.ipp)])
    aff[:3, :] = lps * np.array([[-1.0], [-1.0], [1.0]])
    return aff
