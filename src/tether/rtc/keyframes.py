"""How often a receiver asks its sender for a keyframe (PLI) while none comes.

Each request makes the sender encode a whole picture: several frames' worth of bytes
at once. On a congested path that keyframe is itself partly lost or late; asking again
every ``KEYFRAME_REQUEST_INTERVAL_S`` then fills the path with keyframes that never
complete (a 250 kbit/s path measured ten seconds of this after the cap began). So
while a request goes unanswered the wait before the next one doubles, up to
``KEYFRAME_REQUEST_MAX_S``; a keyframe that arrives starts it over. Pure logic; time
is passed in."""

from __future__ import annotations

from tether.timing import KEYFRAME_REQUEST_INTERVAL_S, KEYFRAME_REQUEST_MAX_S


class KeyframePacing:
    def __init__(
        self,
        first_s: float = KEYFRAME_REQUEST_INTERVAL_S,
        longest_s: float = KEYFRAME_REQUEST_MAX_S,
    ) -> None:
        self.first_s, self.longest_s = first_s, longest_s
        self.wait_s = first_s  # before the next request
        self._asked_at: float | None = None
        self._unanswered = False

    def may_ask(self, now: float, force: bool = False) -> bool:
        """Whether to send a request now (if so, it counts as sent)."""
        if self._asked_at is not None and now - self._asked_at > 2 * self.longest_s:
            self.wait_s, self._unanswered = self.first_s, False  # that episode is over
        if not force and self._asked_at is not None and now - self._asked_at < self.wait_s:
            return False
        if self._unanswered:
            self.wait_s = min(self.wait_s * 2, self.longest_s)
        self._asked_at, self._unanswered = now, True
        return True

    def keyframe_arrived(self) -> None:
        self.wait_s, self._unanswered = self.first_s, False
