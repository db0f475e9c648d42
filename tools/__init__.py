"""Maintenance tools for the course (run from the repository root, e.g. ``python -m tools.editions``)."""
