"""The aiortc adapter: the one place that reaches into aiortc and aioice internals.

Each module owns one concept; import from the module that owns it:

- ``adapter``: ``MediaAdapter``, what an app changes in aiortc's globals, installed
  for the app's lifespan and undone after (nested installs are safe);
- ``version``: the aiortc range the adapter was checked against; an app refuses to
  start on another;
- ``eager_release``: a jitter buffer that releases a video frame once it is complete,
  and paced requests for lost packets (the pacing itself: ``nack``);
- ``encoder``: the VP8 encoder fitted to the link, its bitrate floor and the bitrate
  a reconnect starts at;
- ``ice``: loopback-only host candidates, explicit ICE servers, and whether a host is
  this machine;
- ``encoded_frame`` and ``encoded_receiver``: forwarding encoded video, and the
  keyframe requests and bitrate estimates that flow back to its sender;
- ``measures``: what aiortc's stats lack (first-transmission counts, the receiver's
  bitrate estimate, datagrams received) and the RTP timestamps on the wire.
"""
