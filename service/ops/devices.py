"""Which execution providers the landmark models run on in this process (/readyz, /metrics)."""


def landmark_providers(backend: str) -> list[str]:
    if backend != "onnx":
        return []
    # Imported only for the onnx backend: the MediaPipe path does not load onnxruntime.
    from vision.landmarks_onnx.models import active_providers

    return active_providers()
