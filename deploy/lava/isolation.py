"""Run a Lava job in a child process that can be watched, timed out and killed with everything it started.

Lava 0.10.0 runs every process model in a forked OS process and turns an exception (or a crash) in one
of them into a deadlock of the whole run. :func:`run_isolated` therefore runs the job in a forked child
that leads its own process group (so Lava's processes are in it too) and waits for its answer while
watching it:

- the answer arrives: returned (an exception raised by the job is raised here, same type);
- the child dies without answering (killed, out of memory, segfault): :class:`LavaRunError` at once;
- a Lava process (a child of the job's process) ends abnormally (killed by a signal, or a nonzero exit
  status) and the deadlocked runtime never reaps it: a watcher thread in the job's process peeks at its
  status without reaping it (``waitid(..., WNOWAIT)``), and the run ends with :class:`LavaRunError`
  within :data:`POLL_S` seconds or so, naming the process; normal exits are left alone;
- ``timeout`` passes: :class:`LavaRunError` naming the limit;
- Ctrl-C (KeyboardInterrupt in the parent; the child's group does not get the terminal's SIGINT):
  raised again within :data:`POLL_S`.

In every case the whole process group is killed (SIGKILL) before returning: no orphans.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from spikeport.emulator.errors import SpikeportError

POLL_S = 0.1
WATCH_S = 0.2


class LavaRunError(SpikeportError, RuntimeError):
    """A Lava run that died, hung or timed out (the message says which and what to do)."""


def _child(
    conn: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], log_fd: int
) -> None:
    os.setpgid(0, 0)
    os.dup2(log_fd, 2)  # Lava prints its processes' tracebacks here: the parent reports one line of it
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)  # also where Python's sys.stderr pointed elsewhere
    lock = threading.Lock()
    threading.Thread(target=_watch_children, args=(conn, lock), daemon=True).start()
    try:
        result: tuple[str, Any] = ("ok", fn(*args, **kwargs))
    except BaseException as exc:  # sent to the parent, raised there
        result = ("error", exc)
    with lock:
        try:
            conn.send(result)
        except Exception as exc:  # the exception itself would not pickle
            conn.send(("error", LavaRunError(f"Lava run failed: {type(result[1]).__name__}: {exc}")))
        conn.close()


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                out.append(int(d.name))
    return out


def abnormal_exit(pid: int) -> str | None:
    """How child ``pid`` ended if it ended abnormally (signal, nonzero status), without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return None if info.si_status == 0 else f"exit code {info.si_status}"
    return f"killed by signal {signal.Signals(info.si_status).name}"


def _watch_children(conn: Any, lock: threading.Lock) -> None:
    """In the job's process: end the run when one of its (Lava) processes ends abnormally."""
    me = os.getpid()
    while True:
        time.sleep(WATCH_S)
        for pid in children(me):
            how = abnormal_exit(pid)
            if how is not None:
                msg = f"run_lava: a Lava process (pid {pid}) died ({how}) and Lava stopped answering; the run was killed"
                with lock:
                    with contextlib.suppress(Exception):
                        conn.send(("error", LavaRunError(msg)))
                    os._exit(3)


def group_members(pgid: int) -> dict[int, str]:
    """pid -> state letter (``Z``: zombie) of every process in process group ``pgid`` (Linux /proc)."""
    out: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            out[int(d.name)] = fields[0]
    return out


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by signal {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _wait(proc: Any, conn: Any, timeout: float | None, what: str) -> tuple[str, Any]:
    start = time.monotonic()
    while True:
        if conn.poll(POLL_S):
            try:
                return conn.recv()  # type: ignore[no-any-return]
            except EOFError:  # the child closed the pipe without answering: it died
                proc.join(1.0)
                raise LavaRunError(_died(what, proc.exitcode)) from None
        now = time.monotonic()
        if not proc.is_alive() and not conn.poll(0):  # (an answer sent just before exiting is read first)
            raise LavaRunError(_died(what, proc.exitcode))
        if timeout is not None and now - start > timeout:
            raise LavaRunError(
                f"{what}.timeout: must finish within {timeout:g} s (got no answer; Lava deadlocks when one "
                "of its processes fails); the run was killed"
            )


def _died(what: str, exitcode: int | None) -> str:
    return f"{what}: the Lava process died without an answer ({_describe(exitcode)}); nothing was written"


def run_isolated(
    fn: Callable[..., Any], *args: Any, timeout: float | None = None, what: str = "run_lava", **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)`` in a watched child process group (see the module docstring). What the
    job writes to stderr is captured: on success it is passed on, on failure its last error line
    (e.g. the exception a Lava process raised) is added to the one-line message."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    with tempfile.TemporaryFile() as log:
        proc = ctx.Process(target=_child, args=(send, fn, args, kwargs, log.fileno()), daemon=False)
        proc.start()
        send.close()
        pid = cast(int, proc.pid)  # set by start()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpgid(pid, pid)  # also here: no race with the first kill_group
        try:
            status, payload = _wait(proc, recv, timeout, what)
        except LavaRunError as exc:
            raise LavaRunError(f"{exc}{_said(log)}") from None
        finally:
            kill_group(pid)
            proc.join(5)
            recv.close()
        if status == "error":
            raise payload
        log.seek(0)
        sys.stderr.write(log.read().decode("utf8", "replace"))
    return payload


def _said(log: Any) -> str:
    """``; Lava said: <last error line>`` from the captured stderr, or nothing."""
    log.seek(0)
    lines = log.read().decode("utf8", "replace").splitlines()
    errors = [line.strip() for line in lines if re.match(r"^\s*\w+(Error|Exception|Interrupt)\b", line)]
    return f"; Lava said: {errors[-1][:200]}" if errors else ""
