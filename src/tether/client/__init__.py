"""The worker-client side of the protocol: the signaling client and the peer
connection to a worker. Used by the studio's link, `tether run` and the probe."""
