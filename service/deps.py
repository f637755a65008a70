"""Annotated dependencies handing routes the Runtime's parts (the one way to reach them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, cast

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from service.runtime import Runtime
from service.settings import Settings


def get_runtime(conn: HTTPConnection) -> Runtime:
    """The app's Runtime (set once by the lifespan; HTTP and WebSocket routes alike)."""
    return cast(Runtime, conn.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(rt: RuntimeDep) -> Settings:
    return rt.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    """One session per request; commits when the handler returns, rolls back when it raises."""
    session = rt.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit is a 500, not a lie.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
