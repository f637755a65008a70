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
    # Rate-limit counters go to Redis when set, else the database (hand-off tokens, keys and
    # the catalog always live in the database, so every replica sees them).
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
    # Per side; the face mesh's OpenCV aborts the process at 32767, so at most 32766 applies.
    max_frame_side: int = 8192
    smoothing_min_cutoff: float = 1.0
    # beta is in face sizes per second (vision.smoothing scales speed by the face size)
    smoothing_beta: float = 5.0
    smoothing_d_cutoff: float = 1.0
    render_msaa_samples: int = 4
    # auto/gpu: render on a GPU's EGL device when there is one, else Mesa llvmpipe on the CPU
    # (gpu logs the fall-back); cpu: always llvmpipe.
    render_device: Literal["auto", "gpu", "cpu"] = "auto"

    # Concurrency and limits
    worker_threads: int = 2
    max_streams: int = 8
    max_body_bytes: int = 8 * 1024 * 1024
    # Requests per key per fixed one-minute window (a key's own limit overrides it); 0 = none.
    rate_limit_per_minute: int = 600
    # The public demo key gets its own (lower) budget; 0 = same as rate_limit_per_minute.
    demo_rate_limit_per_minute: int = 120
    # Single-frame requests waiting for a worker beyond this many get 503 (bounded backlog).
    max_pending_renders: int = 16
    # Per-stream WebSocket message size cap (a 1280x720 JPEG is ~100-300 kB).
    max_stream_frame_bytes: int = 2 * 1024 * 1024
    # A stream with no message for this long is closed (seconds).
    stream_idle_timeout_s: float = 60.0
    jpeg_quality: int = 85
    # GLB uploads through POST /v1/products.
    max_glb_bytes: int = 4 * 1024 * 1024
    max_glb_triangles: int = 100_000
    # Stream touchpoint events are batched off the frame path: flushed at this many or after
    # this many seconds, whichever first; the in-memory buffer drops beyond max_event_buffer.
    event_batch_size: int = 50
    event_flush_interval_s: float = 1.0
    max_event_buffer: int = 10_000
    # Prefix for every Redis key this service writes (several deployments can share one Redis).
    redis_prefix: str = "tryon:"

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
    # Cross-shopper offer statistics (popularity, co-try-on) are cached this long per process.
    offers_stats_ttl_s: float = 300.0
    # Funnel: a cart/order counts when within this many hours after the first try-on.
    conversion_window_hours: float = 72.0
    handoff_token_ttl_s: int = 600
    # Run migrations (alembic upgrade heads) and the retention purge when the app starts.
    migrate_on_startup: bool = True
    retention_on_startup: bool = True
    # Events timestamped further than this into the future are rejected (client clock skew).
    event_max_future_skew_s: float = 300.0
    event_max_batch: int = 500
    # Base URL the hand-off QR code points at (the phone opens it); empty = the request's own.
    public_base_url: str = ""
