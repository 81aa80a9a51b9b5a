"""The process-wide set-up that every streaming command does before it starts: the
studio's CA file and the frame trace. (The aiortc adapter is the apps' own: their
lifespans install it from their settings, see ``tether.rtc.adapter``.)"""

from __future__ import annotations

from tether.client.tls import use_ca_file
from tether.config import StudioSettings, WorkerSettings


def apply_media_settings(settings: StudioSettings | WorkerSettings) -> None:
    if isinstance(settings, StudioSettings):
        use_ca_file(settings.ca_file)
    if settings.trace_dir:
        from tether.media import trace

        trace.enable(settings.trace_dir)
