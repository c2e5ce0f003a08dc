"""Blind Gaussian / Poisson-like denoiser (residual CNN on a pixel-unshuffled input)."""
