"""ASGI middleware that holds for every route: who may call, and how much they may send.

Plain ASGI (not Starlette's ``BaseHTTPMiddleware``), so a refusal is sent before the app, the
form parser or the route ever reads the body, and so ``BodyLimit`` can watch the body as it
streams in.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.responses import HTMLResponse, RedirectResponse

from sightline.devices import release_freed_cpu_memory
from sightline.errors import ConfigError
from sightline.serve.core.errors import error_response

Scope = dict[str, Any]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-Sightline-Request"
TOKEN_HEADER = "X-Sightline-Token"
OPEN_PATHS = frozenset({"/api/health"})  # answered without a token (a load balancer's probe)
TOKEN_COOKIE = "sightline_token"
TOKEN_QUERY = "token"
MIN_TOKEN_CHARS = 16  # secrets.token_urlsafe(12) and up: too many to guess, even online
GENERATE_TOKEN = "generate"  # --token generate: a random one, printed at start


def check_token(token: str | None) -> str | None:
    """``token`` when it is strong enough to guard a server (None: no token); ConfigError
    otherwise. ``"generate"`` becomes a new random token."""
    if token is None or token == "":
        return None
    if token == GENERATE_TOKEN:
        return secrets.token_urlsafe(24)
    if len(token) < MIN_TOKEN_CHARS or token.strip() != token:
        raise ConfigError(
            f"the token must be at least {MIN_TOKEN_CHARS} characters without spaces at either end "
            f"(this one has {len(token)}): give a long random one, or --token {GENERATE_TOKEN} "
            "for one made and printed at start"
        )
    return token


def is_loopback(host: str) -> bool:
    """True for names only this machine can reach: localhost, 127.0.0.0/8, ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to a public address


def _header(scope: Scope, name: str) -> str | None:
    key = name.lower().encode("latin-1")
    for k, v in scope.get("headers", ()):
        if k == key:
            return v.decode("latin-1")
    return None


def _host_name(host_header: str) -> str:
    """'127.0.0.1:8000' → '127.0.0.1'; '[::1]:8000' → '::1'."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")].lower()
    return (
        host_header.rsplit(":", 1)[0].lower()
        if host_header.count(":") == 1
        else host_header.lower()
    )


class AccessGuard:
    """Three checks, in this order:

    1. Host (only without a token): the Host header must name this machine's loopback. A web
       page on evil.example can point its own name at 127.0.0.1 (DNS rebinding) and then call
       this server as "same origin"; its requests still say ``Host: evil.example``.
    2. Token (when one is set): every request except /api/health needs it, as
       ``Authorization: Bearer <token>``, ``X-Sightline-Token`` or the ``sightline_token``
       cookie; none → 401, wrong → 403. Compared in constant time (``hmac.compare_digest``),
       so timing reveals nothing. A browser gets the cookie by opening a page with
       ``?token=…`` (the link ``sightline serve`` prints): it is answered with a redirect to
       the same page without the token in its address, setting the cookie (HttpOnly, so no
       script can read it; SameSite=Strict, so no other site's page sends it).
    3. CSRF: a state-changing call (anything but GET/HEAD/OPTIONS) from another site's page is
       refused (``cross_site``), from what browsers say about every request they send, as Go's
       ``http.CrossOriginProtection`` and modern frameworks check it. A script (curl, Python)
       is no browser and cannot be made to attack anyone: it needs no extra header.
    """

    def __init__(
        self, app: Any, token: str | None = None, allowed_hosts: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.token = token.encode("utf-8") if token else None
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refusal = self.check(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> Any:
        path = scope.get("path", "")
        if self.token is None:
            host = _host_name(_header(scope, "host") or "")
            if not is_loopback(host) and host not in self.allowed_hosts:
                return error_response(
                    403,
                    f"host {host!r} is not allowed: open the server as http://127.0.0.1 "
                    "(or start it with a token to reach it by another name)",
                )
        elif path not in OPEN_PATHS:
            in_query = _query_token(scope)
            if (
                in_query is not None
                and scope.get("method") in ("GET", "HEAD")
                and not path.startswith("/api/")
            ):
                return self._cookie_redirect(scope, in_query)
            given = _given_token(scope)
            if given is None:
                if not path.startswith("/api/"):
                    return page_refusal(
                        401,
                        "This server needs its token: open the address <code>sightline serve</code> "
                        "printed (it ends in <code>?token=…</code>), or paste the token here.",
                        scope,
                    )
                return error_response(
                    401,
                    f"this server needs a token: send 'Authorization: Bearer <token>' or "
                    f"'{TOKEN_HEADER}: <token>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not self._matches(given):
                return (
                    error_response(403, "wrong token")
                    if path.startswith("/api/")
                    else page_refusal(403, WRONG_TOKEN_PAGE, scope)
                )
        if scope.get("method", "GET") not in SAFE_METHODS and cross_site(scope):
            return error_response(
                403,
                "cross-site request refused: a call that changes something must come from this "
                f"server's own pages or from a script (a browser page elsewhere may send it with "
                f"the header '{CSRF_HEADER}: 1' only after a CORS preflight, which this server "
                "never grants)",
            )
        return None

    def _matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode("utf-8"), self.token)

    def _cookie_redirect(self, scope: Scope, given: str) -> Any:
        if not self._matches(given):
            return page_refusal(403, WRONG_TOKEN_PAGE, scope)
        rest = _other_fields(scope)
        path = scope.get("path", "/")
        if not path.startswith("/") or path.startswith("//") or "\\" in path:
            path = "/"  # "//host/..." or "/\\host" would send the browser to another site
        target = path + ("?" + urlencode(rest) if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict", path="/")
        return response


def cross_site(scope: Scope) -> bool:
    """Whether a request comes from another site's page, by what the browser says:

    * ``X-Sightline-Request`` (our pages send it): a browser sends a custom header cross-origin
      only after a CORS preflight, which this server never grants: same origin.
    * ``Sec-Fetch-Site`` (every current browser sends it): ``same-origin`` or ``none`` (typed
      in, a bookmark) pass; ``same-site`` and ``cross-site`` are refused.
    * Else ``Origin`` (older browsers send it with a POST): it must name this host.
    * Neither: not a browser (curl, a script), or one too old to say: passes.
    """
    if (_header(scope, CSRF_HEADER) or "").strip():
        return False
    site = (_header(scope, "sec-fetch-site") or "").strip().lower()
    if site:
        return site not in ("same-origin", "none")
    origin = _header(scope, "origin")
    if origin is None:
        return False
    host = (_header(scope, "host") or "").lower()
    return origin.strip().lower().split("://", 1)[-1] != host


def _given_token(scope: Scope) -> str | None:
    auth = _header(scope, "authorization") or ""
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    header = (_header(scope, TOKEN_HEADER) or "").strip()
    if header:
        return header
    cookies = SimpleCookie()
    try:
        cookies.load(_header(scope, "cookie") or "")
    except CookieError:
        return None
    morsel = cookies.get(TOKEN_COOKIE)
    if morsel is None:
        return None
    return morsel.value.strip() or None


def _query_token(scope: Scope) -> str | None:
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == TOKEN_QUERY and value.strip():
            return value.strip()
    return None


WRONG_TOKEN_PAGE = "Wrong token: paste the one <code>sightline serve</code> printed."


def _other_fields(scope: Scope) -> list[tuple[str, str]]:
    """The query's fields but the token, in order."""
    query = scope.get("query_string", b"").decode("latin-1")
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != TOKEN_QUERY]


def page_refusal(status: int, message_html: str, scope: Scope | None = None) -> Any:
    """A refusal a person reads in a browser tab (``message_html`` is ours, never a client's).
    With the request's ``scope``: the token page (the site's navigation and a field for the
    token, which its form sends as ``?token=`` to this same guard, ``web/pages.py``)."""
    if scope is not None:
        from sightline.serve.web.pages import token_page

        return token_page(status, message_html, scope.get("path", "/"), _other_fields(scope))
    body = f"<!doctype html><meta charset=utf-8><title>sightline</title><p>{message_html}</p>"
    return HTMLResponse(body, status_code=status)


class NoFraming:
    """Every response refuses to be shown inside another site's page (clickjacking: a page on
    evil.example frames ours, invisible, under its own buttons). ``frame-ancestors 'none'`` is
    added to the response's Content-Security-Policy (or is its policy), and
    ``X-Frame-Options: DENY`` says the same to browsers that predate CSP 2."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": no_framing(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, framed_send)


def no_framing(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out, has_policy = [], False
    for key, value in headers:
        name = key.lower()
        if name == b"x-frame-options":
            continue
        if name == b"content-security-policy":
            has_policy = True
            if b"frame-ancestors" not in value:
                value = value.rstrip(b"; ") + b"; frame-ancestors 'none'"
        out.append((key, value))
    if not has_policy:
        out.append((b"content-security-policy", b"frame-ancestors 'none'"))
    out.append((b"x-frame-options", b"DENY"))
    return out


class _BodyTooLarge(Exception):
    pass


LARGE_BODY = 4 * 1024 * 1024  # after a request this large, freed memory goes back to the system


class BodyLimit:
    """Request bodies over ``max_bytes`` → 413, before the whole body is read; after a large
    one, the memory its parsing and decoding freed is handed back (``devices.py``).

    A declared Content-Length over the limit is refused before reading a byte. A body without
    one (chunked) or lying about it is counted as it streams in: the first chunk past the limit
    stops the read (the app's ``receive`` raises), whatever the app answers then is dropped,
    and the 413 goes out instead. So the memory and disk an upload can take are bounded for
    every route, whatever parser it uses.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> Any:
        mb = self.max_bytes / (1024 * 1024)
        return error_response(
            413, f"request too large: the limit is {mb:g} MB per request (--max-upload-mb)"
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, "content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, f"bad Content-Length header {declared[:40]!r}")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                await self._refusal()(scope, receive, send)
                return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to a cut-off body (often a parse error): ours replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        finally:
            if received > LARGE_BODY:  # its copies (form parts, bytes) are freed by now
                release_freed_cpu_memory()
        if exceeded and not started:
            await self._refusal()(scope, receive, send)
