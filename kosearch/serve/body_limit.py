"""An ASGI middleware that refuses request bodies larger than a limit, before the application sees them.

Checking ``Content-Length`` alone is not enough (a chunked body has none, and a client may lie), so
the middleware reads the body itself, counting, and answers 413 as soon as the count passes the
limit; a body within it is handed to the application unchanged. Holding it is cheap because the
limit is small (1 MiB by default), and the application would read it whole anyway to parse JSON.
"""

from __future__ import annotations

import json
from typing import Any, Callable


class BodyLimitMiddleware:
    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await self._refuse(send)
                    return
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            part = message.get("body", b"")
            received += len(part)
            if received > self.max_bytes:
                await self._refuse(send)
                return
            parts.append(part)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would say it

        await self.app(scope, replay, send)

    async def _refuse(self, send: Callable) -> None:
        body = json.dumps(
            {"error": f"the request body is larger than {self.max_bytes} bytes; send fewer or shorter texts"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
