"""Headless sub-commands of ``workbench``: one module per command (see :mod:`workbench.cli`)."""
