"""Count a server's system calls per accepted event, by kind and by peer (perf tracepoints).

    python bench/ingress/syscalls.py PID SECONDS --port 18089 [--events N]

Records ``raw_syscalls:sys_enter`` of PID for about SECONDS with ``perf record`` (low overhead: no
ptrace), then maps each call's first argument (the fd, for I/O calls) to what it is connected
to: the HTTP clients (local --port), RabbitMQ (:5672), Redis (:6379), the log file (fd 1/2).
``run.py --profile-seconds`` calls :func:`trace` and divides by the events accepted meanwhile.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

# x86_64 numbers of the calls an asyncio server makes.
NAMES = {
    0: "read",
    1: "write",
    3: "close",
    7: "poll",
    20: "writev",
    39: "getpid",
    44: "sendto",
    45: "recvfrom",
    46: "sendmsg",
    47: "recvmsg",
    202: "futex",
    228: "clock_gettime",
    232: "epoll_wait",
    233: "epoll_ctl",
    281: "epoll_pwait",
    288: "accept4",
    16: "ioctl",
    72: "fcntl",
    13: "rt_sigaction",
    14: "rt_sigprocmask",
    35: "nanosleep",
    318: "getrandom",
    9: "mmap",
    11: "munmap",
    12: "brk",
    10: "mprotect",
    8: "lseek",
}
FD_CALLS = {"read", "write", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg"}
LINE = re.compile(r"NR (\d+) \(([0-9a-f]+)")


def _sockets() -> dict[str, tuple[int, int]]:
    """socket inode -> (local port, remote port) for TCP sockets."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            out[f[9]] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16))
    return out


def fd_peers(pid: int, http_port: int) -> dict[int, str]:
    socks = _sockets()
    peers = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        n = int(fd)
        if n in (1, 2):
            peers[n] = "log file (stdout/stderr)"
        elif target.startswith("socket:["):
            local, remote = socks.get(target[8:-1], (0, 0))
            peers[n] = (
                "RabbitMQ"
                if remote == 5672
                else "Redis"
                if remote == 6379
                else "HTTP clients"
                if local == http_port
                else f"socket {local}->{remote}"
            )
        else:
            peers[n] = "loop internals" if target.startswith(("anon_inode", "pipe")) else target
    return peers


def trace(
    pid: int, seconds: float, http_port: int, count: Callable[[], int] | None = None
) -> tuple[dict[str, Counter[str]], int | None]:
    """Record for ``seconds``; ``count()`` (the server's accepted events) is read when recording has
    begun and when it ends, so the number of events matches the recorded window."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "raw_syscalls:sys_enter", "-p", str(pid), "-o", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # perf attached
        a0 = count() if count else None
        time.sleep(seconds)
        a1 = count() if count else None
        perf.send_signal(signal.SIGINT)
        perf.wait(30)
        peers = fd_peers(pid, http_port)
        script = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, text=True, check=True)
    by_call: Counter[str] = Counter()
    by_peer: Counter[str] = Counter()
    for ln in script.stdout.splitlines():
        m = LINE.search(ln)
        if not m:
            continue
        name = NAMES.get(int(m.group(1)), f"NR {m.group(1)}")
        by_call[name] += 1
        if name in FD_CALLS:
            by_peer[f"{peers.get(int(m.group(2), 16), 'other fd')}: {name}"] += 1
    events = None if a0 is None or a1 is None else a1 - a0
    return {"by_call": by_call, "by_peer": by_peer}, events


def report(result: dict[str, Counter[str]], events: int) -> str:
    lines = []
    total = sum(result["by_call"].values())
    lines.append(f"{total} system calls for {events} accepted events = {total / max(events, 1):.2f} per event")
    lines.append("by call (per event):")
    for name, c in result["by_call"].most_common(12):
        lines.append(f"  {c / max(events, 1):6.2f}  {name}")
    lines.append("I/O calls by peer (per event):")
    for name, c in result["by_peer"].most_common():
        lines.append(f"  {c / max(events, 1):6.2f}  {name}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pid", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--port", type=int, required=True, help="the server's HTTP port")
    p.add_argument("--events", type=int, default=1, help="events accepted during the window (to normalise)")
    args = p.parse_args()
    result, _ = trace(args.pid, args.seconds, args.port)
    print(report(result, args.events))


if __name__ == "__main__":
    main()
