"""upgrade(url): run `alembic upgrade heads` programmatically (app start-up, tests, CLI)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from service.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant: serializes concurrent start-ups of several replicas on one PostgreSQL.
_PG_LOCK_KEY = 0x7472796F6E  # "tryon"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    return cfg


def upgrade(url_or_engine: str | Engine, revision: str = "heads") -> None:
    """Bring the schema to every head (features branch from 0001_events, so there are several)."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def main() -> None:
    import argparse

    from service.settings import Settings

    parser = argparse.ArgumentParser(description="Run database migrations (upgrade heads)")
    parser.add_argument("--url", default=None, help="database URL (default: settings)")
    args = parser.parse_args()
    upgrade(args.url or Settings().database_url)


if __name__ == "__main__":
    main()
