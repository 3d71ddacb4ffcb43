"""The server's door, as pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, under
which a handler never sees its client leave): the API key, JSON bodies only, no cross-origin
request without the key, and every answer counted by route and status."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diffutron_serve.errors import APIError

Count = Callable[[str, str, int], None]
"""Called once per answered HTTP request with ``(method, route, status)``."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _local(host: str) -> bool:
    """Whether ``host`` (a URL's host) is this machine's name or an IP address, which no other
    site's DNS can point a browser at (a DNS-rebinding page has a name of its own)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def same_origin(scope: Scope) -> bool:
    """Whether the request comes from no web page (no ``Origin``) or from the server's own page,
    reached by ``localhost`` or an IP address. A malformed ``Origin`` is another origin."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        netloc = parts.netloc.lower()
    except ValueError:
        return False
    return netloc == (_header(scope, b"host") or "").lower() and _local(host)


def is_json(scope: Scope) -> bool:
    kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    return kind == "application/json"


class Guard:
    """Wraps the app: refuses, in the OpenAI error format, a protected path without the key
    (401), a body that is not declared ``application/json`` (415) and a request from another
    web page's origin that does not carry the key (403, so no page in the user's browser can use
    a keyless local server); counts every answer with ``count``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        protected: Callable[[str], bool],
        route: Callable[[Scope], str],
        count: Count | None = None,
    ) -> None:
        self.app, self.api_key, self.protected = app, api_key, protected
        self.route, self.count = route, count

    def _keyed(self, scope: Scope) -> bool:
        if self.api_key is None:
            return False
        given = (_header(scope, b"authorization") or "").encode()
        return hmac.compare_digest(given, f"Bearer {self.api_key}".encode())

    def refusal(self, scope: Scope) -> APIError | None:
        path, method = scope["path"], scope["method"]
        keyed = self._keyed(scope)
        if self.api_key is not None and self.protected(path) and not keyed:
            return APIError(
                "a valid API key is required (Authorization: Bearer KEY)",
                401,
                code="invalid_api_key",
            )
        if not same_origin(scope) and not keyed:
            return APIError(
                "a request from another web page's origin needs the API key; serve with "
                "--api-key and send Authorization: Bearer KEY",
                403,
                code="cross_origin",
            )
        if method == "POST" and not is_json(scope):
            return APIError(
                "the request body must be JSON sent as Content-Type: application/json",
                415,
                code="unsupported_media_type",
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            error = self.refusal(scope)
            if error is None:
                await self.app(scope, receive, counted)
            else:
                await _answer(error, counted)
        finally:
            if self.count is not None:
                self.count(scope["method"], self.route(scope), status)


async def _answer(error: APIError, send: Send) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
