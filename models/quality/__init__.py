"""Image-quality triage classifier: good / noisy / blurred / low contrast."""
