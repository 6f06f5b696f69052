"""What the service accepts: the request models, the body-size limit, and error bodies that
echo a client's input safely (JSON-safe, truncated)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

__all__ = [
    "MAX_BATCH",
    "MAX_BODY",
    "MAX_ECHO",
    "BatchRequest",
    "BodyLimit",
    "PortfolioRequest",
    "echo",
    "validation_errors",
]

MAX_BATCH = 50
MAX_BODY = 64 * 1024  # bytes of request body; a 50-symbol request is about 1 KB
MAX_ECHO = 64  # characters of a client's value echoed back in an error


class PortfolioRequest(BaseModel):
    symbols: list[str] = Field(min_length=2, max_length=MAX_BATCH)
    # allow_inf_nan=False: NaN, Infinity and 1e400 (inf once parsed) are rejected by the model
    risk_free: float = Field(default=0.0, ge=-0.01, le=0.01, allow_inf_nan=False)

    @field_validator("symbols")
    @classmethod
    def distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("symbols must be distinct")
        return value


class BatchRequest(BaseModel):
    symbols: list[str] = Field(min_length=1, max_length=MAX_BATCH)


def echo(value: Any) -> Any:
    """A client's value as it may appear in an error body: JSON-safe (a NaN or Infinity would
    make the error itself unserialisable) and at most MAX_ECHO characters (never a 10 MB
    symbol back)."""
    if value is None or (isinstance(value, bool | int) and abs(value) < 10**15):
        return value
    if isinstance(value, float) and np.isfinite(value):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}… ({len(text)} characters)"


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors with every echoed input and context made safe (_echo)."""
    out = []
    for e in errors:
        item = {"type": e.get("type"), "loc": [echo(p) for p in e.get("loc", ())]}
        item["msg"] = echo(str(e.get("msg", "")))
        if "input" in e:
            item["input"] = echo(e["input"])
        if e.get("ctx"):
            item["ctx"] = {str(k): echo(v if isinstance(v, str | int | float) else str(v))
                           for k, v in e["ctx"].items()}  # fmt: skip
        out.append(item)
    return out


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, whether announced by
    Content-Length or streamed without one, before the app reads them whole."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            await JSONResponse(self._detail(declared.decode("latin-1")), 413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI passes an HTTPException from here through as is
                raise HTTPException(413, detail=self._detail(f"over {seen}"))
            return message

        await self.app(scope, limited, send)

    def _detail(self, size: str) -> dict:
        return {
            "detail": {
                "field": "body",
                "error": f"request body of {echo(size)} bytes is over the {self.limit}-byte "
                "limit; send fewer symbols per request",
            }
        }
