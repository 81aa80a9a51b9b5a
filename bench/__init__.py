"""Benchmarks: each is a script (``python -m bench.NAME``)."""

from tether.rtc.adapter import MediaAdapter

# A benchmark's own client stands in for a browser: it releases frames as soon as they
# are complete (as browsers and Tether's peers do), encodes with aiortc's own VP8
# encoder, and never leaves this machine. Installed for the script's whole run.
BENCH_CLIENT = MediaAdapter(bitrate_floor_bps=None, fitted_encoder=False, ice_hosts="loopback")
