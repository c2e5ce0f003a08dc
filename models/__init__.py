"""Training and export code of Workbench's bundled reference models (training-only; the app never imports it)."""
