"""The `onnx` landmark backend: MediaPipe's face detector and attention face mesh models
converted to ONNX (vision/data/models) on ONNX Runtime, CPU or GPU. Select it with
FaceTrackerOptions(backend="onnx"); see docs/vision_core.md."""

from vision.landmarks_onnx.batcher import MicroBatcher
from vision.landmarks_onnx.models import LandmarkModels, active_providers, shared_models
from vision.landmarks_onnx.tracker import OnnxFaceTracker

__all__ = ["LandmarkModels", "MicroBatcher", "OnnxFaceTracker", "active_providers", "shared_models"]
