"""A process to start with a log file and to stop by PID, SIGTERM first.

One type for our own children (a ``Popen``: exit code known, no zombie left)
and for someone else's PID (a blue the rollout was told about), so stopping a
process reads the same whoever started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Running, and not a zombie (a process exited but not yet reaped by its
    parent still answers kill(0): a test harness reaps its children late)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Process:
    """A running process: ``start()`` one, or ``adopt()`` a PID."""

    name: str
    pid: int
    popen: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    group: bool = False  # it leads its own session: signals reach its whole group

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        new_session: bool = False,
    ) -> Process:
        """Start ``argv``, stdout and stderr to ``log`` (or nowhere).

        ``new_session``: it outlives a Ctrl-C aimed at us, and ``stop()`` ends
        the children it forks too (gunicorn's workers, a pinned ``taskset``).
        """
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") if log is not None else open(os.devnull, "wb") as out:
            popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if env is None else dict(env),
                cwd=cwd,
                start_new_session=new_session,
            )
        return cls(name, popen.pid, popen, log, group=new_session)

    @classmethod
    def adopt(cls, name: str, pid: int) -> Process:
        """Someone else's process: alive and stopped by PID, exit code unknown."""
        return cls(name, pid)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def send(self, sig: int) -> None:
        """Deliver ``sig`` (to the group when it leads one) while it runs: a reaped
        child's PID may already belong to another process."""
        if not self.alive():
            return
        with suppress(ProcessLookupError):
            if self.group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, and reap it: a crash, no drain."""
        self.send(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP: frozen, connections open, nothing answered."""
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def wait(self, timeout: float) -> int | None:
        """The exit code (None: not our child, gone with an unknown code).

        Raises TimeoutError if it is still running after ``timeout``.
        """
        if self.popen is not None:
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{self.name} still running after {timeout}s") from None
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout}s")
            time.sleep(0.05)
        return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it overstays ``timeout``; the exit code."""
        self.resume()  # a paused process cannot act on SIGTERM
        self.terminate()
        try:
            return self.wait(timeout)
        except TimeoutError:
            self.send(signal.SIGKILL)
            return self.wait(5)

    def output(self) -> str:
        """Everything it wrote so far ("" without a log)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


def children(pid: int) -> list[tuple[int, str]]:
    """``pid``'s child processes and their command lines (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # exited meanwhile
                continue
            found.append((int(child), argv.decode(errors="replace")))
    return found
