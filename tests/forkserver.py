"""A fork server for the test suites: one process that has imported the runner and dbt
once, and forks a child per `dbt-runner` command a test runs.

Each child is a process of its own, as `python -m dbt_runner ARGS` would be: its own
pid (a test signals it directly), environment, working folder, standard streams and
exit code, and it runs the runner's own `main()`. What it skips is importing dbt
again (about 2 s per command, hundreds of commands per suite). Tests that are about
the process itself (its imports, `python -m`, a network namespace) start a real one.

Protocol, over a Unix SEQPACKET socket (one message per record): the client sends
{"argv", "env", "cwd"} as JSON with three file descriptors attached (stdin, stdout,
stderr); the server forks and answers the child's pid, then, when the child has
exited, its wait status. The server is single-threaded (fork and threads do not mix):
it refuses to start if the imports started a thread.
"""

from __future__ import annotations

import array
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
import threading
import traceback

MAX_MESSAGE = 1 << 20
# What a run imports: loaded once here, shared by every child (copy on write).
PRELOAD = (
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.postgres",
    "dbt_runner.cli",
    "dbt_runner.cli.args",
    "dbt_runner.run.pipeline",
    "boto3",
)


def preload() -> None:
    gc.disable()
    try:
        for name in PRELOAD:
            __import__(name)
    finally:
        gc.enable()
    gc.freeze()


def serve(path: str) -> None:
    preload()
    if threading.active_count() != 1:
        sys.exit(f"the imports started {threading.active_count() - 1} thread(s): cannot fork")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(64)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    print("ready", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:  # the suite's worker is gone: so are we
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is server:
                connection, _ = server.accept()
                pid = start(connection, [server, selector, wake_read, wake_write])
                if pid is not None:
                    children[pid] = connection
            else:
                os.read(wake_read, 4096)
        reap(children)


def reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        connection = children.pop(pid, None)
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.send(str(status).encode())
            connection.close()


def start(connection: socket.socket, inherited: list[object]) -> int | None:
    """Fork a child for the request on `connection`; its pid (None: a bad request)."""
    fds = array.array("i")
    message, ancillary, _, _ = connection.recvmsg(MAX_MESSAGE, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if len(fds) != 3:
        connection.close()
        return None
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:
        child(request, list(fds), connection, inherited)
    for fd in fds:
        os.close(fd)
    connection.send(str(pid).encode())
    return pid


def child(
    request: dict[str, object], fds: list[int], connection: socket.socket, inherited: list[object]
) -> None:
    """The forked child: the request's streams, folder and environment, then the
    runner's main(), as `python -m dbt_runner` runs it. Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in inherited:  # the server's own: not the child's
            with contextlib.suppress(Exception):
                if isinstance(item, int):
                    os.close(item)
                else:
                    item.close()  # type: ignore[attr-defined]
        connection.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 (the process's own)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.chdir(str(request["cwd"]))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
        sys.argv = ["dbt-runner", *[str(a) for a in request["argv"]]]  # type: ignore[attr-defined]
        from dbt_runner.cli import entry

        entry()  # ends the process itself (process.end)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1])
