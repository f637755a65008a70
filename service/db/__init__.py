"""Database layer: declarative base, engine/session factories, models and Alembic migrations."""
