"""Media plumbing: frame slots, forwarding encoded video, the encoder's fit to its
bitrate, converting frames from any thread, frame numbers in pixels, SDP checks and
per-frame tracing."""
