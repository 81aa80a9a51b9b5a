"""The process-wide media set-up that every streaming command does before it starts:
the aiortc adapter's patches, the studio's CA file, and the frame trace."""

from __future__ import annotations

from tether.client.tls import use_ca_file
from tether.config import StudioSettings, WorkerSettings
from tether.rtc import use_bitrate_floor, use_eager_release, use_fitted_encoder


def apply_media_settings(settings: StudioSettings | WorkerSettings) -> None:
    use_eager_release(settings.eager_release)
    use_bitrate_floor()
    use_fitted_encoder()
    if isinstance(settings, StudioSettings):
        use_ca_file(settings.ca_file)
    if settings.trace_dir:
        from tether import trace

        trace.enable(settings.trace_dir)
