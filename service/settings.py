"""Every configuration knob of the service, read from the environment (prefix TRYON_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRYON_", extra="ignore")

    # Storage: SQLite (WAL) in the working directory by default; PostgreSQL for a fleet.
    database_url: str = Field(
        default="sqlite:///./tryon.sqlite",
        validation_alias=AliasChoices("DATABASE_URL", "TRYON_DATABASE_URL"),
    )
    # Shared counters (rate limits, hand-off tokens) go to Redis when set, else the database.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TRYON_REDIS_URL")
    )

    assets_dir: Path = ROOT / "assets" / "models3d"
    demo_dir: Path = ROOT / "client_demo"

    # Vision
    landmark_backend: Literal["mediapipe"] = "mediapipe"
    max_faces: int = 1
    camera_fov_deg: float = 63.0
    max_frame_pixels: int = 4096 * 4096
    smoothing_min_cutoff: float = 1.0
    smoothing_beta: float = 0.05
    smoothing_d_cutoff: float = 1.0
    render_msaa_samples: int = 4

    # Concurrency and limits
    worker_threads: int = 2
    max_streams: int = 8
    max_body_bytes: int = 8 * 1024 * 1024
    rate_limit_per_minute: int = 600

    # Keys: a public demo key limited to try-on, created at start-up when set (empty = none).
    demo_api_key: str = "demo-public-key"
    # Admin key created at start-up when set (for first-run bootstrapping of other keys).
    bootstrap_admin_key: str | None = None

    # Events, offers, retention
    retention_days: int = 365
    coupon_after_hours: float = 24.0
    coupon_valid_hours: float = 72.0
    offer_frequency_cap: int = 5
    offer_frequency_window_hours: float = 24.0
    handoff_token_ttl_s: int = 600
