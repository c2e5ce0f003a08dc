"""Per-image statistics for ``input.intensity.standardize`` (wave 2), without a float copy of the image.

``standardize`` needs the mean and standard deviation of the (clipped) image per channel. A 512x512x300
CT volume is 78 M voxels: ``data.astype(float64).std()`` would allocate 630 MB. The statistics are
accumulated instead over chunks of about one million voxels (float64 sums of values shifted by a first
estimate of the mean, so that the variance does not cancel catastrophically), NaN/Inf ignored.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 1 << 20  # voxels per chunk


def channel_stats(data: np.ndarray, *, channels: int, colour: bool, clip: tuple[float, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation per channel of ``data``.

    Parameters
    ----------
    data : ndarray
        Any shape; with ``colour`` the last axis holds the channels.
    channels : int
        Channels of the model; a one-channel image fed to a colour model gives the same statistics to
        every channel.
    colour : bool
        The last axis of ``data`` is a colour axis.
    clip : (float, float), optional
        Values are clipped to ``[lo, hi]`` first (the statistics of what the model sees).

    Returns
    -------
    mean, std : ndarray
        ``(channels,)`` float64 each; ``(0, 0)`` for an image with no finite value.
    """
    colour = colour and channels > 1
    flat = data.reshape(-1, data.shape[-1])[:, :channels] if colour else data.reshape(-1, 1)
    n_ch = flat.shape[1]
    total = np.zeros(n_ch)
    total_sq = np.zeros(n_ch)
    count = np.zeros(n_ch)
    shift = None
    rows = max(1, _CHUNK // max(1, n_ch))
    for start in range(0, flat.shape[0], rows):
        chunk = flat[start:start + rows].astype(np.float64)
        if clip is not None:
            np.clip(chunk, clip[0], clip[1], out=chunk)
        finite = np.isfinite(chunk) if chunk.dtype.kind == "f" and data.dtype.kind == "f" else None
        if finite is not None:
            chunk = np.where(finite, chunk, np.nan)
        if shift is None:
            shift = np.nan_to_num(np.nanmean(chunk, axis=0)) if finite is not None else chunk.mean(axis=0)
        chunk -= shift
        if finite is not None:
            total += np.nansum(chunk, axis=0)
            total_sq += np.nansum(chunk * chunk, axis=0)
            count += finite.sum(axis=0)
        else:
            total += chunk.sum(axis=0)
            total_sq += np.einsum("ij,ij->j", chunk, chunk)
            count += chunk.shape[0]
    if shift is None:
        shift = np.zeros(n_ch)
    safe = np.maximum(count, 1)
    mean_shifted = total / safe
    var = np.maximum(total_sq / safe - mean_shifted ** 2, 0.0)
    mean = np.where(count > 0, mean_shifted + shift, 0.0)
    std = np.where(count > 0, np.sqrt(var), 0.0)
    if n_ch != channels:
        mean, std = np.broadcast_to(mean, (channels,)).copy(), np.broadcast_to(std, (channels,)).copy()
    return mean, std
