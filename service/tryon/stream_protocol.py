"""The WebSocket stream's messages: controls the client sends, ids it may give, error frames."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

CLOSE_POLICY = 1008  # bad or missing key/ticket, a key in the URL, bad or foreign ids
CLOSE_TRY_AGAIN = 1013  # at max_streams, or the key/session at max_streams_per_principal
CHANNELS = ("web", "kiosk", "app", "store_staff", "call_centre")


class SelectGlasses(BaseModel):
    type: Literal["select"]
    sku: str = Field(max_length=64)
    variant: str | None = Field(default=None, max_length=64)


class SelectShade(BaseModel):
    type: Literal["shade"]
    shade: str = Field(max_length=64)
    intensity: float = Field(default=1.0, ge=0.0, le=1.0)
    finish: Literal["matte", "satin", "gloss", "shimmer"] | None = None


class SetIntensity(BaseModel):
    type: Literal["intensity"]
    value: float = Field(ge=0.0, le=1.0)


class Simple(BaseModel):
    type: Literal["snapshot", "end", "clear", "ping"]


class Auth(BaseModel):
    type: Literal["auth"]
    key: str = Field(max_length=1024)  # an API key or a session token


Selecting = SelectGlasses | SelectShade | SetIntensity | Simple
Control = Annotated[
    SelectGlasses | SelectShade | SetIntensity | Simple | Auth, Field(discriminator="type")
]
CONTROL: TypeAdapter[Control] = TypeAdapter(Control)

# Touchpoint ids from the query, held to what an event may carry (the envelope's `Id` and
# `ShortStr`): a longer, blank or NUL id would get every event of the session rejected.
StreamId = Annotated[
    str | None, Field(default=None, max_length=128, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]
StoreId = Annotated[
    str | None, Field(default=None, max_length=64, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]


class StreamIdentity(BaseModel):
    anonymous_id: StreamId
    session_id: StreamId
    user_id: StreamId
    store_id: StoreId
    kiosk_id: StoreId


def error_message(code: str, message: str, **extra: Any) -> str:
    return json.dumps({"type": "error", "code": code, "message": message, **extra})
