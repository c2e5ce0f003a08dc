"""What training, evaluation and the plugin share: the prompt geometry of the model and its input."""
from __future__ import annotations

import numpy as np

from workbench.inference.promptable.prompts import Prompt, channel_input

SIZE = 128  # the model's square input
CONTEXT = 0.4  # crop margin around the previous mask / clicks, times their extent, each side
MIN_SIZE = 32  # smallest crop (image pixels)
FIRST_SIZE = 512  # a first click alone sees the whole image, or this square around it on larger images
ENCODING = "distance"  # max(0, 1 - d / RADIUS): the graph weights the clicked pixels by it (net.py)
RADIUS = 5.0  # model pixels
PERCENTILE = (0.5, 99.5)
# the graph's parameter-free prompt features (net.py), here for the model card without torch
SOFT_TOLERANCES = (0.04, 0.1, 0.2)  # normalised intensity units: exp(-(d / t)^2) maps
CONNECT = ((0, 0.06), (0, 0.15), (1, 0.1))  # (include 0 / exclude 1, tolerance) of the connectedness maps
ITERATIONS = 48  # propagation steps at half resolution (a path may run 96 model pixels)
EXTRA = 2 + 2 * len(SOFT_TOLERANCES) + len(CONNECT)


def normalize(img: np.ndarray) -> np.ndarray:
    """The plugin's ``input.intensity.percentile`` of the whole plane, clipped to [0, 1]."""
    img = img.astype(np.float32)
    lo, hi = (float(v) for v in np.percentile(img, PERCENTILE))
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((img - lo) / (hi - lo), 0, 1).astype(np.float32)


def model_input(plane: np.ndarray, prompt: Prompt, previous: np.ndarray | None):
    return channel_input(plane, prompt, previous, size=SIZE, context=CONTEXT, min_size=MIN_SIZE,
                         first_size=FIRST_SIZE, encoding=ENCODING, radius=RADIUS, use_previous=True)
