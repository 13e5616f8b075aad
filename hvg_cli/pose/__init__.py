"""MediaPipe pose (the only room that imports mediapipe): detection, person selection, gap filling, smoothing."""

from __future__ import annotations

from pathlib import Path


def mediapipe_model_path(variant: str = "full") -> str | None:
    """Path of a pose landmark model ("lite", "full", "heavy") inside the installed mediapipe package, if present.

    Found without importing mediapipe (slow); MediaPipe would download a missing model at run time.
    """
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    model = root / "modules" / "pose_landmark" / f"pose_landmark_{variant}.tflite"
    return str(model) if model.exists() else None
