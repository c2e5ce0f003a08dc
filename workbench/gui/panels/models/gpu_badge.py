"""The provider badge of a plugin card when the GPU was wanted but the session runs on CPU.

A plugin that lists CUDA (or TensorRT) and whose session came back on CPU gets an amber "CPU (no GPU)"
badge whose tooltip says why (``inference.gpu.fallback_reason``) and where the fix is; every other
session keeps the green badge of the provider it really uses.
"""
from __future__ import annotations

from ....inference import gpu
from .cards import short_provider


def provider_badge(wanted: list[str], used: str) -> tuple[str, str, str]:
    """(state, text, tooltip) of the badge for a session of a plugin listing ``wanted`` that runs on ``used``."""
    reason = gpu.fallback_reason()
    gpu_wanted = any(p in (gpu.CUDA, gpu.TENSORRT) for p in wanted)
    if gpu_wanted and used not in (gpu.CUDA, gpu.TENSORRT) and reason:
        return ("fallback", f"{short_provider(used)} (no GPU)",
                f"This plugin would use the NVIDIA GPU, but the session runs on {used}: {reason}. "
                "Run `workbench doctor` in a terminal: its last line names the fix.")
    return "ready", short_provider(used), f"Session runs on {used}"
