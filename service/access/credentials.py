"""The one API-key parser: where a caller's key may come from (HTTP, WebSocket, Segment)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping


def api_key_from(
    headers: Mapping[str, str],
    *,
    allow_basic: bool = False,
    fallback: object = None,
) -> str | None:
    """The raw key from `Authorization: Bearer`, `X-API-Key`, or (Segment) basic-auth user.

    `fallback` is a key carried elsewhere (a Segment body's writeKey, a WebSocket's first
    message); it is used only when it is a non-empty string and no header carried one.
    """
    kind, _, value = headers.get("authorization", "").partition(" ")
    value = value.strip()
    if kind.lower() == "bearer" and value:
        return value
    if allow_basic and kind.lower() == "basic" and value:
        try:
            user, _, _ = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = ""
        if user:
            return user
    key = headers.get("x-api-key")
    if key:
        return key
    return fallback if isinstance(fallback, str) and fallback else None
