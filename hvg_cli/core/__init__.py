"""Frozen dataclasses that cross rooms, errors, the stage cache and settings. Imports nothing of hvg."""
