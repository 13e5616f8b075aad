"""hvg: human video generation from a single image with 3D pose and view control."""

__version__ = "0.1.0"
