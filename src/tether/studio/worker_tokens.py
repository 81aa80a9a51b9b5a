"""Which worker token goes where: a token goes only to the worker address it was given
for. A fleet's token goes to the workers its address names (the list, or the name's
addresses), so the key is the whole address, each entry in its canonical form."""

from __future__ import annotations

from tether.client.signaling import signaling_url
from tether.config import StudioSettings
from tether.studio.fleet import parse_worker_specs


def token_key(spec: str) -> str:
    return ",".join(
        s if s.startswith("dns+") else signaling_url(s) for s in parse_worker_specs([spec])
    )


class WorkerTokens:
    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: StudioSettings) -> WorkerTokens:
        """The token the studio was started with, for the worker it was started with."""
        tokens = cls()
        if settings.worker_url and settings.worker_token is not None:
            tokens.give(settings.worker_url, settings.worker_token.get_secret_value())
        return tokens

    def give(self, spec: str, token: str) -> None:
        self._tokens[token_key(spec)] = token

    def token_for(self, spec: str) -> str | None:
        return self._tokens.get(token_key(spec))
