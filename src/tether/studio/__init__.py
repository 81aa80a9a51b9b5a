"""The studio: HTTP API and web UI, the browser's peer, and the link to the worker."""
