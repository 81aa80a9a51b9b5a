"""The studio's link to the worker."""

from tether.studio.link.supervisor import LinkEvent, LinkState
from tether.studio.link.worker_link import WorkerLink

__all__ = ["LinkEvent", "LinkState", "WorkerLink"]
