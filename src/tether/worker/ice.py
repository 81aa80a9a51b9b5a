"""The ICE servers a worker hands out (``get_ice_servers``) and uses itself.

- ``TETHER_ICE_SERVERS``: fixed servers, either comma-separated URLs
  (``stun:stun.example.org:3478,turn:turn.example.org:3478``) or a JSON array of
  ``{"urls", "username"?, "credential"?}`` objects.
- ``TETHER_TURN_URLS`` + ``TETHER_TURN_SECRET``: TURN with time-limited credentials,
  minted per request from a secret shared with the TURN server (coturn's
  ``use-auth-secret`` / REST API scheme): the username is ``<expiry unix time>:<name>``
  and the password base64(HMAC-SHA1(secret, username)). They expire after
  ``TETHER_TURN_TTL_S`` seconds, so a leaked one is worth little.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceConfigError(ValueError):
    pass


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(SCHEMES):
        raise IceConfigError(
            f"ICE server URL must start with stun:, stuns:, turn: or turns:, got {url!r}"
        )
    return url


def parse_ice_servers(value: str | None) -> list[dict[str, Any]]:
    """``TETHER_ICE_SERVERS`` as a list of RTCIceServer-like dicts."""
    text = (value or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IceConfigError(f"TETHER_ICE_SERVERS is not valid JSON: {exc}") from None
        servers = []
        for item in raw:
            if not isinstance(item, dict) or "urls" not in item:
                raise IceConfigError("each ICE server needs 'urls'")
            urls = item["urls"] if isinstance(item["urls"], list) else [item["urls"]]
            server: dict[str, Any] = {"urls": [_check_url(str(u)) for u in urls]}
            for key in ("username", "credential"):
                if item.get(key) is not None:
                    server[key] = str(item[key])
            servers.append(server)
        return servers
    return [{"urls": [_check_url(u)]} for u in text.split(",") if u.strip()]


def turn_credentials(secret: str, name: str, ttl_s: float, now: float) -> tuple[str, str]:
    """coturn's REST API credentials, valid until ``now + ttl_s``."""
    username = f"{int(now + ttl_s)}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


class IceServers:
    def __init__(
        self,
        fixed: str | None = None,
        turn_urls: str | None = None,
        turn_secret: str | None = None,
        turn_ttl_s: float = 3600.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.fixed = parse_ice_servers(fixed)
        self.turn_urls = [_check_url(u) for u in (turn_urls or "").split(",") if u.strip()]
        if self.turn_urls and not turn_secret:
            raise IceConfigError("TETHER_TURN_URLS needs TETHER_TURN_SECRET")
        if any(not u.startswith(("turn:", "turns:")) for u in self.turn_urls):
            raise IceConfigError("TETHER_TURN_URLS takes turn: or turns: URLs")
        self._secret = turn_secret
        self.ttl_s = turn_ttl_s
        self._wall_clock = wall_clock

    def servers(self, name: str = "tether") -> list[dict[str, Any]]:
        """The list for one client (or the worker itself), with fresh TURN credentials."""
        out = [dict(s) for s in self.fixed]
        if self.turn_urls and self._secret:
            username, credential = turn_credentials(
                self._secret, name, self.ttl_s, self._wall_clock()
            )
            out.append(
                {"urls": list(self.turn_urls), "username": username, "credential": credential}
            )
        return out
