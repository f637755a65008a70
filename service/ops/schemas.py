"""Response models of the probes: /healthz and /readyz."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description='"ok" or "error: <exception type>" per dependency (database, redis)'
    )
    render_devices: list[str] = Field(
        description="GL renderers the workers have drawn on (empty until a frame was drawn)"
    )
    landmark_backend: str = Field(description="mediapipe (CPU graph) or onnx")
    landmark_providers: list[str] = Field(
        description="ONNX Runtime execution providers in use (empty until the onnx backend ran)"
    )
    pid: int = Field(
        description="The answering worker process (python -m service runs several; see "
        "docs/service_api.md)"
    )
