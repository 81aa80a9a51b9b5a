"""The network lab's delay element (the kernel here has no netem): a TUN device in the
router namespace. Policy routing sends every forwarded packet into it; this process
holds each packet for the delay and writes it back, and the kernel forwards it on.

    python tests/net/delay.py DEVICE DELAY_MS [JITTER_MS]

The device belongs to this process: it vanishes when the process exits, and the lab's
routing falls back to the direct path, so a crash never blackholes the lab."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import signal
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_HELD = 20_000  # a bound on memory: past it, packets are dropped like a full queue


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


async def run(name: str, delay_s: float, jitter_s: float) -> None:
    fd = open_tun(name)
    loop = asyncio.get_running_loop()
    held = 0
    last_due = 0.0
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def release(packet: bytes) -> None:
        nonlocal held
        held -= 1
        with contextlib.suppress(OSError):  # refused (no route any more): a lost packet
            os.write(fd, packet)

    def readable() -> None:
        nonlocal held, last_due
        for _ in range(64):
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                return
            if held >= MAX_HELD:
                continue
            # Jitter never reorders: a packet leaves no earlier than the one before it.
            due = loop.time() + delay_s + random.uniform(0, jitter_s)
            last_due = max(due, last_due)
            held += 1
            loop.call_at(last_due, release, packet)

    loop.add_reader(fd, readable)
    print("ready", flush=True)
    await stop.wait()
    loop.remove_reader(fd)
    os.close(fd)


def main() -> None:
    name, delay_ms = sys.argv[1], float(sys.argv[2])
    jitter_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    asyncio.run(run(name, delay_ms / 1000, jitter_ms / 1000))


if __name__ == "__main__":
    main()
