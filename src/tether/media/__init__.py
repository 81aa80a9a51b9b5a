"""Media plumbing: frame slots, forwarding encoded video, the encoder's fit to its
bitrate, frame numbers in pixels, SDP checks and per-frame tracing."""
