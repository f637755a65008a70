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
    # mediapipe: MediaPipe's face-mesh graph (CPU). onnx: the same face pipeline on ONNX Runtime
    # (vision/landmarks_onnx), on a GPU when onnxruntime-gpu and one are there, else the CPU.
    landmark_backend: Literal["mediapipe", "onnx"] = "mediapipe"
    # onnx: execution providers, comma-separated ("auto", "cuda", "tensorrt", "cpu").
    onnx_providers: str = "auto"
    # onnx: concurrent streams' landmark calls are gathered this long (ms) into one batch.
    landmark_batch_window_ms: float = 2.0
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
    # auto: MSAA on a GPU, the glasses' box supersampled 2x2 on llvmpipe (as good as 4x MSAA
    # against an 8x reference, and cheaper: see benchmarks/aa_quality.py).
    render_antialias: Literal["auto", "msaa", "ssaa", "none"] = "auto"
    # A stream's drawn glasses are reused while no vertex moved this many pixels on screen
    # (a still head is drawn once); 0 draws every frame.
    render_reuse_px: float = Field(default=0.5, ge=0.0, le=2.0)
    # Frames larger than this (a side, px) are scaled down while decoding (JPEG: in the DCT);
    # 0 = process at the size they arrive.
    max_processing_side: int = 0

    # Concurrency and limits
    # Worker processes `python -m service` runs under uvicorn's supervisor, which restarts one
    # that dies: a native crash (an abort in OpenCV or MediaPipe) costs that worker's
    # connections only. 1 = a single process, no supervisor. Each worker has its own
    # worker_threads and max_streams.
    workers: int = 2
    worker_threads: int = 2
    max_streams: int = 8
    max_body_bytes: int = 8 * 1024 * 1024
    # Requests per key per fixed one-minute window (a key's own limit overrides it); 0 = none.
    rate_limit_per_minute: int = 600
    # The public demo key may only mint sessions (POST /v1/sessions); this is its ceiling for
    # the whole service, every client together; 0 = same as rate_limit_per_minute. Each
    # client has its own budgets below, so one client cannot spend it for the others.
    demo_rate_limit_per_minute: int = 3000
    # Sessions: short-lived anonymous tokens minted with the demo (or a kiosk) key, each bound
    # to one pseudonymous shopper id; HMAC-SHA256 signed with a secret every replica shares
    # (this one when set, else a random one stored once in the database's app_secrets).
    session_secret: str = ""
    session_ttl_s: int = 1800
    # Requests per session token per minute (its own budget, whatever the client).
    session_rate_limit_per_minute: int = 300
    # Requests per client address per minute carrying the demo key or a session token.
    client_rate_limit_per_minute: int = 600
    # Sessions the demo key may mint per client address per minute.
    session_mint_per_minute_per_client: int = 20
    # Proxies (CIDRs) whose X-Forwarded-For is believed; empty: the socket peer is the client.
    trusted_proxies: list[str] = []
    # A stream ticket (POST /v1/tryon/stream-tickets) is single use and lives this long.
    stream_ticket_ttl_s: int = 30
    # Single-frame requests waiting for a worker beyond this many get 503 (bounded backlog).
    max_pending_renders: int = 16
    # Per-stream WebSocket message size cap (a 1280x720 JPEG is ~100-300 kB).
    max_stream_frame_bytes: int = 2 * 1024 * 1024
    # A stream with no FRAME for this long is closed with an "idle" error and code 1000
    # (pings and controls do not count), so an idle client cannot hold a slot (seconds).
    stream_idle_timeout_s: float = 20.0
    # Concurrent streams one key or one session token may hold, on every replica together
    # (leases in Redis when configured, else the database); 0 = no cap, no lease taken.
    max_streams_per_principal: int = 2
    # An open stream renews its lease every heartbeat; one not renewed for ttl expires, so a
    # crashed replica's streams stop counting within ttl. ttl is three heartbeats so that one
    # slow or failed renewal (a database or Redis hiccup) does not free a live stream's slot.
    stream_lease_ttl_s: float = 30.0
    stream_lease_heartbeat_s: float = 10.0
    # An open stream re-checks its key this often: revoking the key (or the key that minted
    # the stream's session token) closes the stream within this time, on every replica.
    stream_key_check_s: float = Field(default=10.0, gt=0.0)
    jpeg_quality: int = 85
    # GLB uploads through POST /v1/products.
    max_glb_bytes: int = 4 * 1024 * 1024
    max_glb_triangles: int = 100_000
    # Stream touchpoint events are batched off the frame path: flushed at this many or after
    # this many seconds, whichever first; the in-memory buffer drops beyond max_event_buffer.
    event_batch_size: int = 50
    event_flush_interval_s: float = 1.0
    max_event_buffer: int = 10_000
    # A batch the database could not take (an outage) goes to a local spool instead of being
    # dropped: JSON lines, one file per process in this directory (empty = no spool), replayed
    # with backoff once the database answers, and at the next start if the process ended
    # first. Beyond max_bytes the oldest spooled events are dropped (tryon_events_dropped).
    event_spool_dir: str = "./tryon-spool"
    event_spool_max_bytes: int = 64 * 1024 * 1024
    # Replays back off from 0.5 s, doubling up to this (seconds).
    event_replay_max_backoff_s: float = 15.0
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
    # A try-on is a product or shade shown (drawn on the face) at least this long, measured by
    # the stream session on the server (docs/events.md "What counts as a try-on").
    min_try_on_dwell_s: float = 1.0
    # Rejected touchpoints kept for GET /v1/admin/rejections (the newest; older ones go).
    rejections_keep: int = 1000
    # The fit-gap report suggests a frame size only from at least this many measured shoppers.
    fit_gap_min_shoppers: int = 20
    # Run migrations (alembic upgrade heads) and the retention purge when the app starts.
    migrate_on_startup: bool = True
    retention_on_startup: bool = True
    # Events timestamped further than this into the future are rejected (client clock skew).
    event_max_future_skew_s: float = 300.0
    event_max_batch: int = 500
    # Base URL the hand-off QR code points at (the phone opens it); empty = the request's own.
    public_base_url: str = ""

    # Analytics engine and the event lake (docs/analytics_offers.md, "The event lake").
    # duckdb: reports run on DuckDB over day-partitioned Parquet exported from the events
    # table; sql: on the SQL store itself (the fallback and the parity reference).
    analytics_engine: Literal["duckdb", "sql"] = "duckdb"
    # A local folder (relative: beside the SQLite file, else the working directory) or any
    # pyarrow filesystem URI (s3://bucket/lake, gs://..., hdfs://...).
    lake_dir: str = "./tryon-lake"
    # A report brings the lake up to date first when its data is older than this.
    lake_max_staleness_s: float = 60.0
    # An export merges a day's files once it has this many.
    lake_compact_min_files: int = 8
    lake_export_chunk_rows: int = 200_000
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = 2
