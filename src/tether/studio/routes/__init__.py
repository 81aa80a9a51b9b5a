"""The studio's HTTP routes, one module-level router per concern: the link (cloud), its
status events, the client stream, the parameters, the pipelines, the metrics, and the
page. ``tether.studio.app`` puts them together."""
