"""The pods' network. A real API server proxies `pods/proxy` and `services/proxy` to the
pod's IP and refuses loopback addresses (`IsProxyableIP`), so pods need addresses of their
own: when this process may (root, iproute2), the node makes a network namespace with a
veth pair and gives each pod an address inside it, 10.244.N.0/24, and the engines listen
there. Otherwise pods get loopback addresses (127.P.N.x, P from the process id and N one
per network, so two clusters in one process or two processes rarely meet): enough for the
embedded cluster, which proxies to any address, but a real API server's proxy then
refuses them.

Traffic goes only to these addresses, which live in a namespace this process made.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"
PREFIX = "pdwatch-"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _links(ident: str) -> tuple[str, str]:
    """The veth pair's names (at most 15 characters: pw<pid>-<n>h)."""
    return f"pw{ident}h", f"pw{ident}p"


def remove_stale() -> None:
    """Namespaces and links a node killed without its cleanup left behind."""
    if not os.path.isdir(NETNS_DIR):
        return
    for name in os.listdir(NETNS_DIR):
        if not name.startswith(PREFIX):
            continue
        ident = name[len(PREFIX) :]
        pid = ident.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _ip("netns", "del", name)
            _ip("link", "del", _links(ident)[0])


_made = itertools.count(1)
_loopbacks = itertools.count(1)


@dataclass
class PodNetwork:
    """Addresses for pods, and listening sockets bound to them."""

    namespace: str | None = None  # the network namespace, when one was made
    prefix: str = "127.0.0"  # the first three octets of its pods' addresses
    host_address: str = "127.0.0.1"
    _next: int = 1
    _free: list[int] = field(default_factory=list)
    _libc: ctypes.CDLL | None = None

    @classmethod
    def loopback(cls) -> PodNetwork:
        """Loopback addresses of their own (Linux routes all of 127.0.0.0/8 to lo)."""
        number = next(_loopbacks)
        return cls(prefix=f"127.{os.getpid() % 200 + 20 + number // 250}.{number % 250 + 1}")

    @classmethod
    def create(cls) -> PodNetwork:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return cls.loopback()
        remove_stale()
        pid = os.getpid()
        ident = f"{pid}-{next(_made)}"
        name = f"{PREFIX}{ident}"
        used = _ip("-4", "route", "show").stdout
        subnet = next(
            (n for n in range(pid % 200 + 1, 255) if f"10.244.{n}.0/24" not in used),
            pid % 200 + 1,
        )
        host, peer = _links(ident)
        steps = [
            ("netns", "add", name),
            ("link", "add", host, "type", "veth", "peer", "name", peer),
            ("link", "set", peer, "netns", name),
            ("addr", "add", f"10.244.{subnet}.1/24", "dev", host),
            ("link", "set", host, "up"),
            ("-n", name, "link", "set", "lo", "up"),
            ("-n", name, "link", "set", peer, "up"),
            # A primary address that stays: deleting a subnet's primary address deletes its
            # secondaries (every other pod's) unless they are promoted.
            ("-n", name, "addr", "add", f"10.244.{subnet}.254/24", "dev", peer),
        ]
        for step in steps:
            if _ip(*step).returncode != 0:
                _ip("netns", "del", name)
                _ip("link", "del", host)
                return cls.loopback()
        return cls(
            name, f"10.244.{subnet}", f"10.244.{subnet}.1", _libc=ctypes.CDLL(None, use_errno=True)
        )

    def allocate(self) -> str:
        number = self._free.pop(0) if self._free else self._take()
        address = f"{self.prefix}.{number}"
        if self.namespace:
            _ip("-n", self.namespace, "addr", "add", f"{address}/24", "dev", self._peer)
        return address

    def _take(self) -> int:
        self._next += 1
        if self._next > 253:
            raise RuntimeError("the node's pod network is full (252 pods)")
        return self._next

    def release(self, address: str) -> None:
        number = int(address.rsplit(".", 1)[1])
        if self.namespace:
            _ip("-n", self.namespace, "addr", "del", f"{address}/24", "dev", self._peer)
        self._free.append(number)

    @property
    def _peer(self) -> str:
        assert self.namespace is not None
        return _links(self.namespace[len(PREFIX) :])[1]

    def listen(self, address: str, port: int) -> socket.socket:
        """A listening TCP socket on the pod's address (inside the namespace: a socket
        keeps the network namespace it was made in)."""
        if self.namespace is None:
            return _bound(address, port)
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def work() -> None:
            assert self._libc is not None
            here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            there = os.open(f"{NETNS_DIR}/{self.namespace}", os.O_RDONLY)
            try:
                if self._libc.setns(there, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                try:
                    made.append(_bound(address, port))
                finally:
                    self._libc.setns(here, CLONE_NEWNET)
            except BaseException as exc:  # handed to the caller's thread
                failed.append(exc)
            finally:
                os.close(here)
                os.close(there)

        thread = threading.Thread(target=work, name="pod-netns")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]

    def close(self) -> None:
        if self.namespace is None:
            return
        _ip("netns", "del", self.namespace)
        _ip("link", "del", _links(self.namespace[len(PREFIX) :])[0])
        self.namespace = None


def _bound(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock
