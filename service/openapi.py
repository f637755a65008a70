"""The OpenAPI document: FastAPI's, plus the Segment write-key scheme, built once per app."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

# Segment SDKs send the write key (a kiosk-scoped API key) as the basic-auth user name;
# service.touchpoints.segment names this scheme on its routes.
SEGMENT_SCHEME = {
    "type": "http",
    "scheme": "basic",
    "description": "Segment write key (an API key with the kiosk scope) as the user name",
}


def install_openapi(app: FastAPI) -> None:
    """Replace app.openapi with one that completes FastAPI's document (then caches it)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = default()
            schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["SegmentWriteKey"] = SEGMENT_SCHEME
            app.openapi_schema = doc
        return app.openapi_schema

    # FastAPI documents this override point: assigning a callable to app.openapi.
    app.openapi = openapi  # type: ignore[method-assign]
