"""Helpers shared by the benchmark scripts (bench/dispatch, bench/latency, bench/history, bench/ingress).

Processes, quiet-machine checks, CPU accounting, Prometheus text parsing, statistics, the
retry-until-undisturbed loop and results files, cleanup of a namespace's queues/exchanges/Redis
keys. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from tests.support.processes import free_port
from tests.support.services import purge_namespace

REPO = Path(__file__).resolve().parents[1]
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLK = os.sysconf("SC_CLK_TCK")
PY = sys.executable


# --------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / CLK


def busy_cores(seconds: float) -> float:
    """How many cores the whole machine kept busy over the next ``seconds`` (sleeps that long)."""
    b0, t0 = machine_busy(), time.monotonic()
    time.sleep(seconds)
    return (machine_busy() - b0) / (time.monotonic() - t0)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def pids_named(*names: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (d / "stat").read_text()
                if raw[raw.index("(") + 1 : raw.rindex(")")] in names:
                    out.append(int(d.name))
    return out


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of RabbitMQ (beam.smp) and Redis."""
    return {
        "rabbitmq": sum(proc_cpu(p) for p in pids_named("beam.smp")),
        "redis": sum(proc_cpu(p) for p in pids_named("redis-server")),
    }


def _ancestors_and_self() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return out


def _descendants() -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [os.getpid()]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def other_benchmarks() -> list[str]:
    """Command lines matching ``pgrep -f 'wrk|bench/'`` that are not this run or its parents/children."""
    try:
        raw = subprocess.run(["pgrep", "-af", "wrk|bench/"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    mine = _ancestors_and_self() | _descendants()
    out = []
    for line in raw.splitlines():
        pid_s, _, cmd = line.partition(" ")
        if not pid_s.isdigit() or int(pid_s) in mine:
            continue
        if "pgrep" in cmd:
            continue
        out.append(line)
    return out


def wait_for_machine(what: str, *, max_wait: float = 900.0, busy_limit: float = 0.6) -> dict[str, Any]:
    """Wait until no other benchmark runs (``pgrep -f 'wrk|bench/'``), then until the machine is fairly idle.

    Returns what was seen, for the report.
    """
    start = time.monotonic()
    others = other_benchmarks()
    said = False
    while others and time.monotonic() - start < max_wait:
        if not said:
            print(f"[{what}] waiting: another benchmark is running: {others[:3]}", file=sys.__stderr__, flush=True)
            said = True
        time.sleep(3.0)
        others = other_benchmarks()
    # Then a short wait for other people's processes (tests, type checkers) to calm down.
    busy = 9.9
    quiet_deadline = time.monotonic() + 60.0
    while time.monotonic() < quiet_deadline:
        busy = busy_cores(1.5)
        if busy <= busy_limit:
            break
    return {
        "waited_s": round(time.monotonic() - start, 1),
        "other_benchmarks_at_start": others,
        "busy_cores_before": round(busy, 2),
    }


class Interference:
    """How much of the machine was busy with things that are not ours during a measurement.

    ``ours`` = the given pids + RabbitMQ + Redis + this process. ``foreign`` = machine busy - ours
    (other people's processes, plus kernel work not charged to any process).
    """

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.m0 = machine_busy()
        self.o0 = self._ours()

    def _ours(self) -> float:
        return sum(proc_cpu(p) for p in self.pids) + sum(service_cpu().values()) + time.process_time()

    def done(self) -> dict[str, Any]:
        dt = time.monotonic() - self.t0
        machine = (machine_busy() - self.m0) / dt
        ours = (self._ours() - self.o0) / dt
        others = other_benchmarks()
        return {
            "machine_cores": round(machine, 2),
            "our_cores": round(ours, 2),
            "foreign_cores": round(machine - ours, 2),
            "other_benchmarks_at_end": others,
            # Another benchmark that merely started at the end (still setting up) costs nothing; CPU decides.
            "contaminated": machine - ours > FOREIGN_LIMIT,
        }


FOREIGN_LIMIT = float(os.environ.get("BENCH_FOREIGN_LIMIT", "0.35"))


async def run_undisturbed(
    what: str,
    retries: int,
    run: Callable[[], Awaitable[dict[str, Any]]],
    *,
    unit: str = "run",
    err: TextIO | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``run()`` once the machine is quiet, again (at most ``retries`` times) while other processes disturbed it.

    Returns (the last result, with ``attempt`` set; what :func:`wait_for_machine` saw before it).
    A disturbed attempt is reported on ``err`` (default: ``sys.stderr``).
    """
    for attempt in range(retries + 1):
        seen = wait_for_machine(what)
        r = await run()
        r["attempt"] = attempt
        if not r.get("interference", {}).get("contaminated"):
            break
        print(f"[{what}] interference during the {unit}, again: {r['interference']}", file=err or sys.stderr)
    return r, seen


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process with its output in a log file; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, *, port: int = 0) -> None:
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            argv, env=dict(env), cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 25.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGCONT)
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return int(self.popen.returncode or 0)

    def wait_http(self, path: str = "/readyz", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.logs()[-3000:]}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + path, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready at {path} within {timeout}s (log {self.log_path})")


def gateway_proc(
    name: str, command: str, env: Mapping[str, str], log_dir: Path, *, launcher: list[str] | None = None
) -> Proc:
    """``python -m gateway.cli COMMAND`` (or ``launcher + [COMMAND]``) on a free port, JSON logs to a file."""
    port = free_port()
    full = {
        **os.environ,
        "GATEWAY_SERVE_WORKERS": "1",  # one ingress process unless a benchmark asks for more
        **env,
        "GATEWAY_PORT": str(port),
        "GATEWAY_CONSUME_PORT": str(port),
        "GATEWAY_LOG_FORMAT": "json",
    }
    return Proc(name, [*(launcher or [PY, "-m", "gateway.cli"]), command], full, log_dir, port=port)


def start_fake(module: str, args: list[str], log_dir: Path, name: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m <module> --port 0 ...``; returns (process, base url from its READY line)."""
    err = (log_dir / f"{name}.log").open("ab")
    p = subprocess.Popen(
        [PY, "-m", module, "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if not line.startswith("READY "):
        p.kill()
        raise RuntimeError(f"{module} did not start: {line!r}")
    return p, line.split(" ", 1)[1]


def py_spy_record(pid: int, seconds: int, dest: Path) -> list[str]:
    """argv of ``py-spy record``: one process's collapsed stacks (``--format raw``), 200 samples/s, into ``dest``."""
    return [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--format",
        "raw",
        "-o",
        str(dest),
    ]


def stop_popen(p: subprocess.Popen[Any]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


# --------------------------------------------------------------------------- metrics

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_sum(samples: Iterable[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items()))


def fetch_metrics(url: str, timeout: float = 2.0) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as r:
        return parse_metrics(r.read().decode())


# --------------------------------------------------------------------------- statistics


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def stats_ms(values: Sequence[float], *, digits: int = 2, top: bool = True, mean: bool = False) -> dict[str, float]:
    """Count and p50/p90/p99 (and max, and the mean) of durations in seconds, in milliseconds."""
    if not values:
        return {"n": 0}
    ms = [v * 1000 for v in values]
    out: dict[str, float] = {"n": len(ms)}
    for p in (50, 90, 99):
        out[f"p{p}"] = round(pct(ms, p), digits)
    if top:
        out["max"] = round(max(ms), digits)
    if mean:
        out["mean"] = round(sum(ms) / len(ms), digits)
    return out


# --------------------------------------------------------------------------- results


def files_parser() -> argparse.ArgumentParser:
    """The command line of a script that reads the files (results, profiles) named on it."""
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    return ap


def save_results(out: Path, info: dict[str, Any], results: list[dict[str, Any]], **more: Any) -> None:
    """``out/results.json``: the machine, every result so far (and e.g. the summary)."""
    (out / "results.json").write_text(json.dumps({"machine": info, "results": results, **more}, indent=1))


def record_result(
    out: Path, info: dict[str, Any], results: list[dict[str, Any]], r: dict[str, Any], brief: Sequence[str]
) -> None:
    """Append ``r``, print its ``brief`` keys as one JSON line, and save everything so far."""
    results.append(r)
    print(json.dumps({k: r.get(k) for k in brief}), flush=True)
    save_results(out, info, results)


# --------------------------------------------------------------------------- cleanup


async def delete_queues_and_exchanges(amqp_url: str, queues: Iterable[str], exchanges: Iterable[str]) -> None:
    """Delete these queues and exchanges by name (a baseline's own, outside the product's topology)."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for name in queues:
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        for name in exchanges:
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)
    finally:
        await connection.close()


async def cleanup_namespace(namespace: str, partitions: int = 16) -> None:
    """Delete the namespace's queues and exchanges and its Redis keys (on the benchmark's services)."""
    await purge_namespace(namespace, partitions, amqp_url=AMQP_URL, redis_url=REDIS_URL, timeout=10)


async def message_counts(amqp_url: str, names: Iterable[str], *, timeout: float | None = None) -> dict[str, int]:
    """Messages ready in each named queue (passive declares; -1 for a queue that is missing)."""
    import aio_pika

    out = {}
    conn = await aio_pika.connect(amqp_url, timeout=timeout)
    try:
        for name in names:
            ch = await conn.channel()
            try:
                q = await ch.declare_queue(name, passive=True)
                out[name] = int(q.declaration_result.message_count or 0)
            except Exception:  # missing queue
                out[name] = -1
            with contextlib.suppress(Exception):
                await ch.close()
    finally:
        await conn.close()
    return out


async def queue_depths(namespace: str, partitions: int = 16) -> dict[str, int]:
    """Messages ready in every dispatch/outbound/dead queue of the namespace (passive declares)."""
    from gateway.core.bus.topology import Topology

    topo = Topology(namespace, partitions)
    return await message_counts(AMQP_URL, [spec.name for spec in topo.queues()], timeout=10)
