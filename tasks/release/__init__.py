"""Releasing a dataset: its card (markdown + Croissant), per-clip provenance and takedowns."""
