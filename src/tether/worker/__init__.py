"""The inference worker: signaling at /ws, one media session per offer."""
