"""Tether: keep a live video stream tethered to a remote GPU worker."""

__version__ = "0.1.0"
