"""A network lab for tests and benchmarks: the studio (and the measuring client) in one
network namespace, the worker in another, a router namespace between them.

    studio ns  s0 198.18.1.2 ── r-s 198.18.1.1  router ns  198.18.2.1 r-w ── w0 198.18.2.2
                                (iptables loss/blackhole, tbf caps, delay via TUN)

The addresses are in 198.18.0.0/15 (RFC 2544, for network benchmarks) and live only in
namespaces the lab creates; no namespace has a route anywhere else. Faults happen in the
router: iptables (statistic module) for random loss and blackholes, ``tbf`` for caps,
a userspace delay element (tests/net/delay.py; this kernel has no netem). The worker
is reached by a name from the studio namespace's own /etc/hosts (``ip netns exec``
mounts /etc/netns/NS/hosts), so its address can change under the studio.

Teardown always runs: every process in the lab's namespaces is killed, the namespaces
(and with them the veths and the TUN device) are deleted. Labs whose creating process
died are swept the next time a lab is built."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PREFIX = "tlab"
CLONE_NEWNET = 0x40000000
STUDIO_ADDR, ROUTER_S, ROUTER_W, WORKER_ADDR = (
    "198.18.1.2",
    "198.18.1.1",
    "198.18.2.1",
    "198.18.2.2",
)
WORKER_NAME = "worker.tether-lab"
WORKER_PORT, STUDIO_PORT = 8765, 8000
DELAY_SCRIPT = Path(__file__).with_name("delay.py")
ROOT = Path(__file__).resolve().parents[2]


class LabUnavailable(RuntimeError):
    """This machine cannot build the lab (not root, no namespaces, no iptables...)."""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise LabUnavailable(f"{' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def missing() -> str | None:
    """Why the lab cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the network lab needs root"
    for tool in ("ip", "iptables", "tc"):
        if shutil.which(tool) is None:
            return f"the network lab needs {tool!r} (apt-get install iproute2 iptables)"
    if not os.path.exists("/dev/net/tun"):
        return "the network lab needs /dev/net/tun for its delay element"
    return None


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> None:
    """Delete labs left by processes that died without tearing down."""
    for line in _run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        owner = name[len(PREFIX) :].split("x", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            _kill_all_in(name)
            _run("ip", "netns", "del", name, check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


def _kill_all_in(ns: str) -> None:
    pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@dataclass
class LabProcess:
    name: str
    ns: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def stop(self, wait_s: float = 10) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


_counter = 0


@dataclass
class Lab:
    workdir: Path
    token: str = "lab-token"
    processes: list[LabProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        global _counter
        _counter += 1
        tag = f"{PREFIX}{os.getpid()}x{_counter}"
        self.studio_ns, self.router_ns, self.worker_ns = f"{tag}-s", f"{tag}-r", f"{tag}-w"
        self.worker_addr = WORKER_ADDR
        self._delay: LabProcess | None = None
        self._built = False

    # -- building and tearing down ---------------------------------------------------

    def build(self) -> Lab:
        reason = missing()
        if reason:
            raise LabUnavailable(reason)
        sweep_stale()
        self._built = True
        atexit.register(self.close)  # an uncaught error in a script still cleans up
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        s, r, w = self.studio_ns, self.router_ns, self.worker_ns
        for ns in (s, r, w):
            _run("ip", "netns", "add", ns)
            self._ns(ns, "ip", "link", "set", "lo", "up")
            for key in ("all", "default"):
                self._ns(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
        _run("ip", "link", "add", "s0", "netns", s, "type", "veth", "peer", "r-s", "netns", r)
        _run("ip", "link", "add", "w0", "netns", w, "type", "veth", "peer", "r-w", "netns", r)
        for ns, dev, addr in (
            (s, "s0", f"{STUDIO_ADDR}/24"),
            (r, "r-s", f"{ROUTER_S}/24"),
            (r, "r-w", f"{ROUTER_W}/24"),
            (w, "w0", f"{WORKER_ADDR}/24"),
        ):
            self._ns(ns, "ip", "addr", "add", addr, "dev", dev)
            self._ns(ns, "ip", "link", "set", dev, "up")
        self._ns(s, "ip", "route", "add", "default", "via", ROUTER_S)
        self._ns(w, "ip", "route", "add", "default", "via", ROUTER_W)
        # Removing the old address on a move must not take the new one with it.
        self._ns(w, "sysctl", "-qw", "net.ipv4.conf.w0.promote_secondaries=1")
        self._ns(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for key in ("all", "default"):
            self._ns(r, "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0")
        for chain in ("LAB_HOLE", "LAB_LOSS"):
            self._ns(r, "iptables", "-N", chain)
            self._ns(r, "iptables", "-A", "FORWARD", "-j", chain)
        hosts = Path(f"/etc/netns/{s}")
        hosts.mkdir(parents=True, exist_ok=True)
        self._write_hosts()
        # The studio namespace must reach the worker through the router.
        self.wait_reachable()

    def close(self) -> None:
        if not self._built:
            return
        for proc in reversed(self.processes):
            proc.stop(wait_s=5)
        self.processes.clear()
        for ns in (self.studio_ns, self.router_ns, self.worker_ns):
            _kill_all_in(ns)
            _run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(f"/etc/netns/{self.studio_ns}", ignore_errors=True)
        self._built = False

    def __enter__(self) -> Lab:
        return self.build()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ns(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("ip", "netns", "exec", ns, *cmd, check=check)

    def _write_hosts(self) -> None:
        # Rewritten in place: `ip netns exec` bind-mounts this very file over /etc/hosts.
        path = Path(f"/etc/netns/{self.studio_ns}/hosts")
        text = f"127.0.0.1 localhost\n{self.worker_addr} {WORKER_NAME}\n"
        with path.open("r+" if path.exists() else "w") as f:
            f.seek(0)
            f.write(text)
            f.truncate()

    @contextlib.contextmanager
    def entered(self, ns: str) -> Iterator[None]:
        """Run this thread in namespace ``ns``: sockets it opens meanwhile live there
        (and stay there afterwards)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(f"/run/netns/{ns}")
            yield
        finally:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(home, CLONE_NEWNET)
            os.close(home)

    def wait_reachable(self, deadline_s: float = 10) -> None:
        deadline = time.monotonic() + deadline_s

        with self.entered(self.studio_ns):
            while True:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.settimeout(0.5)
                try:
                    # a refused connection proves the path works (nothing listens yet)
                    sock.connect((self.worker_addr, 9))
                    return
                except ConnectionRefusedError:
                    return
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise LabUnavailable(f"lab path does not work: {exc}") from None
                finally:
                    sock.close()
                time.sleep(0.05)

    # -- processes -------------------------------------------------------------------

    def spawn(
        self, name: str, ns: str, argv: list[str], env: dict[str, str] | None = None
    ) -> LabProcess:
        log = self.workdir / f"lab-{name}-{len(self.processes)}-{time.monotonic_ns()}.log"
        full_env = {**os.environ, "TETHER_ICE_HOSTS": "all", **(env or {})}
        with log.open("ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
            )
        lp = LabProcess(name, ns, proc, log)
        self.processes.append(lp)
        return lp

    def worker(self, **env: str) -> LabProcess:
        args = ["worker", "--host", "0.0.0.0", "--port", str(WORKER_PORT), "--log-level", "info"]
        proc = self.spawn(
            "worker",
            self.worker_ns,
            [sys.executable, "-m", "tether", *args],
            {"TETHER_WORKER_TOKEN": self.token, **env},
        )
        proc.url = f"http://{WORKER_NAME}:{WORKER_PORT}"
        self._wait_healthy(proc, self.worker_ns, f"http://{WORKER_ADDR}:{WORKER_PORT}")
        return proc

    def studio(self, worker_url: str | None = None, **env: str) -> LabProcess:
        url = worker_url or f"http://{WORKER_NAME}:{WORKER_PORT}"
        args = ["studio", "--port", str(STUDIO_PORT), "--worker", url, "--log-level", "info"]
        proc = self.spawn(
            "studio",
            self.studio_ns,
            [sys.executable, "-m", "tether", *args],
            {"TETHER_WORKER_TOKEN": self.token, **env},
        )
        proc.url = f"http://127.0.0.1:{STUDIO_PORT}"
        self._wait_healthy(proc, self.studio_ns, proc.url)
        return proc

    def _wait_healthy(self, proc: LabProcess, ns: str, url: str, deadline_s: float = 30) -> None:
        deadline = time.monotonic() + deadline_s
        with self.entered(ns), httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                if proc.proc.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{url}/health").status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"{proc.name} not healthy in {deadline_s}s:\n{proc.output()[-3000:]}")

    # -- faults (all in the router) ----------------------------------------------------

    def blackhole(self, on: bool = True) -> None:
        """Drop every forwarded packet, both ways, silently."""
        self._ns(self.router_ns, "iptables", "-F", "LAB_HOLE")
        if on:
            self._ns(self.router_ns, "iptables", "-A", "LAB_HOLE", "-j", "DROP")

    def block_forwarded_udp(self) -> None:
        """No UDP crosses the router (the router's own addresses still answer): media
        can flow only through a TURN relay on the router. Signaling (TCP) still passes."""
        self._ns(self.router_ns, "iptables", "-F", "LAB_HOLE")
        self._ns(self.router_ns, "iptables", "-A", "LAB_HOLE", "-p", "udp", "-j", "DROP")

    def drop_syns(self, port: int) -> None:
        """Connections to ``port`` get no answer at all: their SYNs are dropped (what a
        cloud firewall does to a port it does not open)."""
        self._ns(self.router_ns, "iptables", "-F", "LAB_HOLE")
        self._ns(
            self.router_ns, "iptables", "-A", "LAB_HOLE", "-p", "tcp", "--syn",
            "--dport", str(port), "-j", "DROP",
        )  # fmt: skip

    def block_forwarded_tcp(self) -> None:
        """No TCP crosses the router: the signaling socket dies, media (UDP) flows on."""
        self._ns(self.router_ns, "iptables", "-F", "LAB_HOLE")
        self._ns(self.router_ns, "iptables", "-A", "LAB_HOLE", "-p", "tcp", "-j", "DROP")

    def held(self) -> int:
        """Packets the blackhole rules dropped so far."""
        out = self._ns(self.router_ns, "iptables", "-nvxL", "LAB_HOLE").stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.strip())

    def turn_server(self, secret: str, port: int = 3478) -> LabProcess:
        """coturn on the router, REST-API credentials (``use-auth-secret``), relaying from
        the router's studio-side address."""
        if shutil.which("turnserver") is None:
            raise LabUnavailable("the TURN test needs coturn (apt-get install coturn)")
        argv = [
            "turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint",
            "-L", ROUTER_S, "-L", ROUTER_W, "-E", ROUTER_S, "--listening-port", str(port),
            "--min-port", "49152", "--max-port", "49400", "--realm", "tether-lab",
            "--use-auth-secret", f"--static-auth-secret={secret}",
            "--log-file", "stdout", "--simple-log",
            "--pidfile", str(self.workdir / "turnserver.pid"),
        ]  # fmt: skip
        proc = self.spawn("turnserver", self.router_ns, argv)
        deadline = time.monotonic() + 15
        while "listener opened on" not in proc.output().lower() and "relay" not in proc.output():
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise LabUnavailable(f"turnserver did not start:\n{proc.output()[-2000:]}")
            time.sleep(0.1)
        return proc

    def loss(self, fraction: float) -> None:
        """Drop this fraction of packets at random, each direction (0 clears)."""
        self._ns(self.router_ns, "iptables", "-F", "LAB_LOSS")
        if fraction <= 0:
            return
        for dev in ("r-s", "r-w"):  # on the way out only: a delayed packet passes twice
            self._ns(
                self.router_ns, "iptables", "-A", "LAB_LOSS", "-o", dev,
                "-m", "statistic", "--mode", "random", "--probability", f"{fraction:.4f}",
                "-j", "DROP",
            )  # fmt: skip

    def dropped(self) -> int:
        """Packets the router's loss rules dropped so far."""
        out = self._ns(self.router_ns, "iptables", "-nvxL", "LAB_LOSS").stdout
        return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.strip())

    def cap_dropped(self) -> int:
        """Packets the caps' queues dropped so far."""
        total = 0
        for dev in ("r-s", "r-w"):
            out = self._ns(self.router_ns, "tc", "-s", "qdisc", "show", "dev", dev).stdout
            words = out.replace(",", " ").replace("(", " ").split()
            total += sum(int(words[i + 1]) for i, w in enumerate(words[:-1]) if w == "dropped")
        return total

    def cap(self, kbit: int | None, burst_bytes: int = 8000, queue_ms: int = 200) -> None:
        """A token bucket on the router's way out, each direction (None clears)."""
        for dev in ("r-s", "r-w"):
            self._ns(self.router_ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
            if kbit:
                self._ns(
                    self.router_ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                    "rate", f"{kbit}kbit", "burst", str(burst_bytes), "latency", f"{queue_ms}ms",
                )  # fmt: skip

    def delay(self, ms: float | None, jitter_ms: float = 0) -> None:
        """Hold every forwarded packet ``ms`` one way (None clears)."""
        r = self.router_ns
        if self._delay is not None:
            self._delay.stop()
            self.processes.remove(self._delay)
            self._delay = None
            for pref in ("100", "200"):
                self._ns(r, "ip", "rule", "del", "pref", pref, check=False)
        if not ms:
            return
        self._delay = self.spawn(
            "delay", r, [sys.executable, str(DELAY_SCRIPT), "dly", str(ms), str(jitter_ms)]
        )
        deadline = time.monotonic() + 10
        while "ready" not in self._delay.output():
            if time.monotonic() > deadline or self._delay.proc.poll() is not None:
                raise LabUnavailable(f"delay element did not start: {self._delay.output()}")
            time.sleep(0.02)
        self._ns(r, "ip", "link", "set", "dly", "up")
        self._ns(r, "sysctl", "-qw", "net.ipv4.conf.dly.rp_filter=0")
        self._ns(r, "ip", "route", "replace", "default", "dev", "dly", "table", "200")
        # From the delay element: the normal routes; from anywhere else: into it.
        self._ns(r, "ip", "rule", "add", "pref", "100", "iif", "dly", "lookup", "main")
        self._ns(r, "ip", "rule", "add", "pref", "200", "not", "iif", "lo", "lookup", "200")

    def move_worker(self, new_addr: str) -> None:
        """The worker's address changes: the old one is gone, its name points to the new."""
        old = self.worker_addr
        self._ns(self.worker_ns, "ip", "addr", "add", f"{new_addr}/24", "dev", "w0")
        self._ns(self.worker_ns, "ip", "addr", "del", f"{old}/24", "dev", "w0")
        self._ns(self.worker_ns, "ip", "route", "replace", "default", "via", ROUTER_W)
        self.worker_addr = new_addr
        self._write_hosts()

    def clear(self) -> None:
        self.blackhole(False)
        self.loss(0)
        self.cap(None)
        self.delay(None)
