"""Clients of a worker or studio that are tools, not parts: `tether run` and the
measuring probe used by tests and benchmarks."""
