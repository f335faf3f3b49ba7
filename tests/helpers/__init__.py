"""Helpers shared by tests across the tree (one place for each)."""
