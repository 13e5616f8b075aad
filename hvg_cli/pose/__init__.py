"""MediaPipe pose (the only room that imports mediapipe): detection, person selection, gap filling, smoothing."""

from __future__ import annotations

from pathlib import Path


def mediapipe_model_path() -> str | None:
    """Path of the full pose landmark model shipped inside the mediapipe package, if present."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    model = root / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    return str(model) if model.exists() else None
