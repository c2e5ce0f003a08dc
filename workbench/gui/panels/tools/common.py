"""What the tabs of the Tools dock share: the tab indices and the slider resolution."""
from __future__ import annotations

TAB_PAINT, TAB_THRESHOLD, TAB_GROW, TAB_ISLANDS, TAB_AI = range(5)


SLIDER_STEPS = 1000
