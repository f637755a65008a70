"""`python -m service`: run the API with uvicorn; several worker processes by default.

With more than one worker, uvicorn's supervisor runs them and starts a new one when one dies,
so a native crash (an abort inside OpenCV or MediaPipe on a hostile frame) costs only that
worker's connections. Each worker builds its own app (`service.app:create_app`, settings read
from the environment); all state they share is in the database (and Redis when configured).
Migrations, the derived-table back-fill and the retention purge run once, here, before the
workers start, so they never race each other on start-up.
"""

from __future__ import annotations

import os

# Before numpy loads (workers inherit it): the per-frame linear algebra is tiny (3x3 inverses,
# 33x3 SVDs), and OpenBLAS's own threads waiting for a busy core made one 9 µs inverse cost
# ~0.25 ms inside the frame loop (measured, benchmarks/RESULTS.md). Set it to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse

import uvicorn

from service.ops.log_redaction import install_redaction
from service.settings import Settings


def prepare(settings: Settings) -> None:
    """Start-up work done once for all workers (migrate, back-fill, retention purge)."""
    from service.db.engine import make_engine, make_sessionmaker
    from service.db.migrate import upgrade
    from service.shoppers.retention import run_retention
    from service.wiring import backfill, purgers

    engine = make_engine(settings.database_url)
    try:
        if settings.migrate_on_startup:
            upgrade(engine)
            backfill(engine)
        if settings.retention_on_startup:
            run_retention(make_sessionmaker(engine), settings.retention_days, purgers(settings))
    finally:
        engine.dispose()


def main() -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description="Run the try-on service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=settings.workers,
        help=f"worker processes (default TRYON_WORKERS={settings.workers}); 1 = no supervisor",
    )
    args = parser.parse_args()
    install_redaction()  # before uvicorn logs anything (create_app installs it too)
    workers = max(1, args.workers)
    if workers == 1:
        from service.app import create_app

        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level="info",
            proxy_headers=False,  # X-Forwarded-For: only from settings.trusted_proxies
        )
        return
    prepare(settings)
    # The workers read their settings from the environment: the start-up work is done.
    os.environ["TRYON_MIGRATE_ON_STARTUP"] = "false"
    os.environ["TRYON_RETENTION_ON_STARTUP"] = "false"
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        workers=workers,
        host=args.host,
        port=args.port,
        log_level="info",
        proxy_headers=False,  # X-Forwarded-For: only from settings.trusted_proxies
    )


if __name__ == "__main__":
    main()
