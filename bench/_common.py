"""Shared helpers for the benchmarks in bench/: scratch databases, the `t3r1` CLI, processes
pinned to a core, peak memory of a child, one-core RSA rates, machine facts.

Also runnable: `python bench/_common.py rsa sign|verify SECONDS` prints one-core RSA-2048
PKCS#1 v1.5 SHA-256 operations per second (the orchestrators run it under `taskset`).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
T3R1 = str(VENV_BIN / "t3r1")
PG_ADMIN = os.environ.get("T3R1_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")

# Appended, not prepended: PYTHONPATH (e.g. a copy of t3r1_fed to compare) must win.
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))


# --- machine -----------------------------------------------------------------------------

def machine_facts() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def have_taskset() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(core: int, argv: list[str]) -> list[str]:
    """argv run on one core (taskset execs the command: the pid stays the command's)."""
    return ["taskset", "-c", str(core), *argv] if have_taskset() else argv


# --- RSA rates ---------------------------------------------------------------------------

def _rsa_rate(op: str, seconds: float) -> tuple[float, float]:
    """(operations per wall second, operations per CPU second) for one thread."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key()
    # About the size of a draft-cavage signing string for a POST.
    data = (b"(request-target): post /inbox\nhost: example.org\n"
            b"date: Sat, 28 Nov 2026 12:00:00 GMT\n"
            b"digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
            b"content-type: application/activity+json")
    sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    pad, h = padding.PKCS1v15(), hashes.SHA256()
    # Warm up, then count whole batches until the time is up.
    for _ in range(50):
        pub.verify(sig, data, pad, h) if op == "verify" else key.sign(data, pad, h)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        if op == "verify":
            for _ in range(200):
                pub.verify(sig, data, pad, h)
            n += 200
        else:
            for _ in range(20):
                key.sign(data, pad, h)
            n += 20
        el = time.perf_counter() - t0
        if el >= seconds:
            return n / el, n / max(time.process_time() - c0, 1e-9)


@dataclass
class RsaRate:
    """One-core RSA-2048 PKCS1v15-SHA256 rate: per wall second and per CPU second."""

    wall: float
    cpu: float

    @classmethod
    def mean(cls, *rates: RsaRate) -> RsaRate:
        return cls(sum(r.wall for r in rates) / len(rates), sum(r.cpu for r in rates) / len(rates))


def rsa_rate(op: str, core: int, seconds: float = 2.0) -> RsaRate:
    """One-core RSA-2048 PKCS1v15-SHA256 `op` (sign|verify) rate, in a pinned subprocess."""
    out = subprocess.run(
        pinned(core, [PYTHON, str(BENCH / "_common.py"), "rsa", op, str(seconds)]),
        check=True, capture_output=True, text=True,
    ).stdout
    wall, cpu = out.split()
    return RsaRate(float(wall), float(cpu))


# --- scratch databases -------------------------------------------------------------------

def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_db(url: str, db: str) -> str:
    return url.rpartition("/")[0] + "/" + db


@dataclass
class ScratchDb:
    backend: str
    tmp: Path
    url: str = ""
    _pg_name: str | None = None

    async def create(self) -> str:
        if self.backend == "sqlite":
            self.url = f"sqlite:///{self.tmp / 't3r1.sqlite3'}"
            return self.url
        import asyncpg

        name = f"t3r1_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._pg_name = name
        self.url = _with_db(PG_ADMIN, name)
        return self.url

    async def drop(self) -> None:
        if self._pg_name is None:
            return
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(PG_ADMIN))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._pg_name = None


# --- processes ---------------------------------------------------------------------------

def t3r1(env: dict[str, str], *args: str) -> str:
    """Run the `t3r1` CLI; its stdout, or an error with its stderr."""
    res = subprocess.run([T3R1, *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"t3r1 {' '.join(args)} failed:\n{res.stderr[-3000:]}")
    return res.stdout


def base_env(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("T3R1_")}
    env.update({
        "T3R1_DATA_DIR": str(data_dir), "T3R1_DATABASE_URL": db_url,
        "T3R1_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@dataclass
class Child:
    """A subprocess whose peak RSS we read when it exits (os.wait4 on its own pid)."""

    name: str
    proc: subprocess.Popen[str]
    log_path: Path | None = None
    maxrss_kb: int | None = None
    _lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, argv: list[str], *, env: dict[str, str] | None = None,
              log: Path | None = None, stdin: bool = False) -> Child:
        stderr: Any = open(log, "w") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, bufsize=1,
        )
        if log:
            stderr.close()
        return cls(name, proc, log)

    def readline(self, timeout: float = 60.0) -> str:
        """Next stdout line (blocking, with a crude timeout via select)."""
        import select

        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no output within {timeout}s{self._tail()}")
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.name} exited ({self.proc.poll()}){self._tail()}")
                return line.rstrip("\n")

    def expect(self, prefix: str, timeout: float = 60.0) -> str:
        while True:
            line = self.readline(timeout)
            if line.startswith(prefix):
                return line

    def cpu_seconds(self) -> float:
        """utime + stime of the live process, from /proc."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

    def main_thread_cpu(self) -> float:
        """utime + stime of the main thread alone (the rest: DB driver and other threads)."""
        pid = self.proc.pid
        try:
            fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, and return the peak RSS in KiB (None if already reaped)."""
        if self.proc.returncode is not None:
            return self.maxrss_kb
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.maxrss_kb = ru.ru_maxrss
                return self.maxrss_kb
            if time.monotonic() > end:
                self.proc.kill()
                _, status, ru = os.wait4(self.proc.pid, 0)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.maxrss_kb = ru.ru_maxrss
                return self.maxrss_kb
            time.sleep(0.05)

    def _tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return "\n--- log tail ---\n" + self.log_path.read_text()[-3000:]
        return ""


def free_port(ip: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    import urllib.request

    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


async def db_scalar(url: str, sql: str) -> Any:
    """One value from a query on a sqlite:/// or postgresql:// database (no ORM)."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split(":///", 1)[1], timeout=30)
        try:
            row = conn.execute(sql).fetchone()
            conn.commit()
        finally:
            conn.close()
        return row[0] if row else None
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def gen_keys(count: int) -> list[tuple[str, str]]:
    """`count` RSA-2048 key pairs (PEM), made on every core."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(_one_key, range(count)))


def cached_keys(count: int) -> list[tuple[str, str]]:
    """Test key pairs, kept in the temp directory between runs (they take seconds to make)."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "t3r1-bench-keys.json"
    keys: list[tuple[str, str]] = []
    try:
        keys = [(k[0], k[1]) for k in json.loads(path.read_text())]
    except (OSError, ValueError):
        pass
    if len(keys) < count:
        keys += gen_keys(count - len(keys))
        path.write_text(json.dumps(keys))
    return keys[:count]


def _one_key(_: int) -> tuple[str, str]:
    from t3r1_fed.federation.keys import generate_rsa_keypair

    return generate_rsa_keypair()


def mib(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:.0f} MiB"


def self_maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "rsa":
        print("{:.1f} {:.1f}".format(*_rsa_rate(sys.argv[2], float(sys.argv[3]))))
    else:
        sys.exit("usage: _common.py rsa sign|verify SECONDS")
