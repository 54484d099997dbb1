"""One pure-ASGI middleware: request id, body size limit, and an access log line per request."""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.backend.core.logging import request_id

log = logging.getLogger("mnist.access")
HEADER = b"x-request-id"
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# Generated ids: 16 random hex digits for this process, then a counter. Unique across processes and replicas like a
# uuid4, without a getrandom() call and a UUID object on every request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(HEADER, b"")
        rid = incoming.decode() if _VALID_ID.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        limit = self.max_body_bytes
        response_started = False

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, rid, limit)
            self._log(scope, 413, started)
            request_id.reset(token)
            return

        received = 0
        rejected = False

        async def counting_receive() -> Message:
            # Over the limit: answer 413 now, and tell the app the client went away.
            nonlocal received, rejected, status
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    rejected, status = True, 413
                    if not response_started:
                        await _too_large(send, rid, limit)
                    return {"type": "http.disconnect"}
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if rejected:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        finally:
            self._log(scope, status, started)
            request_id.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        if log.isEnabledFor(logging.INFO):
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            log.info("request", extra={"fields": fields})


async def _too_large(send: Send, rid: str, limit: int) -> None:
    body = json.dumps({"detail": f"request body is larger than the limit of {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (HEADER, rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
