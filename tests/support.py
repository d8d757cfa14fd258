"""Helpers shared by the test suites: the CLI as a subprocess, a real PostgreSQL."""

from __future__ import annotations

import array
import atexit
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
SCHEMA = ROOT / "docs" / "report.schema.json"
# The demo's full job, phase by phase, when everything succeeds.
PHASES_OK = [
    ("deps", "success"),
    ("debug", "success"),
    ("parse", "success"),
    ("seed", "success"),
    ("build", "success"),
    ("freshness", "success"),
    ("docs", "success"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any runner, dbt or GitHub setting (a test run
    inside a workflow must not comment on its pull request), plus `extra`."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DBT_", "GITHUB_"))
    }
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra)
    return env


def copy_project(source: Path, destination: Path) -> Path:
    shutil.copytree(
        source,
        destination,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", "*.wal"),
    )
    return destination


# --- the runner as a process of its own ------------------------------------------------


class Forked:
    """A child of the fork server (tests/forkserver.py), as subprocess.Popen is used: its
    pid, poll, wait, signals. The server tells its exit status on `connection`."""

    def __init__(self, connection: socket.socket, pid: int) -> None:
        self.connection, self.pid = connection, pid
        self.returncode: int | None = None

    def _status(self, timeout: float | None) -> int | None:
        self.connection.settimeout(timeout)
        try:
            data = self.connection.recv(64)
        except (TimeoutError, BlockingIOError):
            return None
        if not data:
            raise RuntimeError(f"the fork server went away before child {self.pid} ended")
        status = int(data)
        self.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        self.connection.close()
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode if self.returncode is not None else self._status(0)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._status(timeout) is None:
            raise subprocess.TimeoutExpired(["dbt-runner"], timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """This test process's fork server: started on first use, gone with the process."""

    _instance: ForkServer | None = None
    _failed = False

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="dbt-runner-fork-")
        self.path = str(Path(self.folder) / "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.path],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()  # bounded: the server exits on failure
        if ready.strip() != "ready":
            self.process.kill()
            raise RuntimeError("the fork server did not start")
        atexit.register(self.stop)

    @classmethod
    def get(cls) -> ForkServer | None:
        """The server, or None: RUNNER_TESTS_FORK=0, or it could not start (then every
        command starts a process of its own, as before)."""
        if os.environ.get("RUNNER_TESTS_FORK") == "0" or cls._failed:
            return None
        if cls._instance is None:
            try:
                cls._instance = ForkServer()
            except (OSError, RuntimeError) as exc:
                cls._failed = True
                print(f"fork server unavailable ({exc}): starting a process per command")
                return None
        return cls._instance

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, *streams: Any) -> Forked:
        """`dbt-runner ARGS` in a child with `env`, in `cwd`, on `streams` (files, each
        with a fileno: stdin, stdout, stderr)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        connection.connect(self.path)
        request = json.dumps({"argv": args, "env": env, "cwd": str(cwd)}).encode()
        fds = array.array("i", [stream.fileno() for stream in streams])
        connection.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        connection.settimeout(60)
        pid = int(connection.recv(64))
        return Forked(connection, pid)

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cli(
    args: list[str], env: dict[str, str], stdout: Any, stderr: Any, cwd: Path | None = None
) -> Forked | subprocess.Popen[bytes]:
    """`dbt-runner ARGS` as a process of its own, writing to `stdout` and `stderr` (open
    files): a child of the fork server, else `python -m dbt_runner`."""
    server = ForkServer.get()
    if server is None:
        command = [sys.executable, "-m", "dbt_runner", *args]
        return subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
    with Path(os.devnull).open() as nothing:
        return server.spawn(args, env, cwd or Path.cwd(), nothing, stdout, stderr)


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `dbt-runner ARGS` as a process of its own and capture its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = start_cli(list(args), env, out, err, cwd)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
            raise
        out.seek(0)
        err.seek(0)
        said = (out.read().decode(errors="replace"), err.read().decode(errors="replace"))
    return subprocess.CompletedProcess(["dbt-runner", *args], code, *said)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass
class Moto:
    """A real moto server on 127.0.0.1: S3, Glue, Secrets Manager, SSM, Redshift."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """What the runner needs to reach it (boto3 honours AWS_ENDPOINT_URL)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def redshift_cluster(self, name: str) -> str:
        """A provisioned cluster in moto (its `dev` database); its name."""
        self.client("redshift").create_cluster(
            ClusterIdentifier=name,
            NodeType="ra3.xlplus",
            MasterUsername="admin",
            MasterUserPassword="Adm1nPassw0rd",
            DBName="dev",
        )
        return name

    def client(self, service: str) -> Any:
        import boto3

        factory: Any = boto3.client  # typed per service name; here any service
        return factory(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@contextmanager
def moto_server() -> Iterator[Moto]:
    binary = Path(sys.executable).parent / "moto_server"
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:  # bounded wait for the server to answer
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        output = log.read()[-2000:]
                        raise RuntimeError(f"moto_server did not start: {output!r}") from None
                    time.sleep(0.1)
            yield Moto(f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            process.wait(timeout=10)


def find_secret(secret: str, text: str = "", *folders: Path) -> list[str]:
    """Where `secret` appears: in `text` (logs) or any file under `folders`."""
    found = ["output"] if secret in text else []
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else []:
            if path.is_file() and secret.encode() in path.read_bytes():
                found.append(str(path))
    return found


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    def connect(self, database: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def schemas(self, like: str) -> set[str]:
        rows = self.query(
            "select schema_name from information_schema.schemata where schema_name like %s", like
        )
        return {name for (name,) in rows}

    def tables(self, schema: str) -> set[str]:
        rows = self.query(
            "select table_name from information_schema.tables where table_schema = %s", schema
        )
        return {name for (name,) in rows}

    def columns(self, schema: str, table: str) -> set[str]:
        rows = self.query(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            schema,
            table,
        )
        return {name for (name,) in rows}

    def warehouse_env(self, schema: str) -> dict[str, str]:
        """DBT_RUNNER_WAREHOUSE__* settings for a rendered postgres profile."""
        return {
            "DBT_RUNNER_WAREHOUSE__TYPE": "postgres",
            "DBT_RUNNER_WAREHOUSE__HOST": self.host,
            "DBT_RUNNER_WAREHOUSE__PORT": str(self.port),
            "DBT_RUNNER_WAREHOUSE__USER": self.user,
            "DBT_RUNNER_WAREHOUSE__PASSWORD": self.password,
            "DBT_RUNNER_WAREHOUSE__DATABASE": self.database,
            "DBT_RUNNER_WAREHOUSE__SCHEMA": schema,
        }


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL is not installed: run .ci/run, or apt-get install -y postgresql")


@contextmanager
def postgres_server(auth: str = "scram-sha-256") -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1, stopped after; `auth`: its
    authentication method (password-protected by default)."""
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="dbt-runner-pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    password = "pg-" + os.urandom(6).hex()
    (base / "pwfile").write_text(password + "\n")
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(base / "pwfile", "postgres")
    data = base / "data"
    port = free_port()
    try:
        subprocess.run(
            [
                *prefix,
                str(bindir / "initdb"),
                *("-D", str(data), "-U", "runner", "--pwfile", str(base / "pwfile")),
                *("--auth", auth),
            ],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                *("-D", str(data), "-l", str(base / "log"), "-o", options),
                *("-w", "-t", "60", "start"),
            ],
            check=True,
            capture_output=True,
        )
        server = Postgres("127.0.0.1", port, "runner", password, "postgres")
        deadline = time.monotonic() + 30
        while True:  # bounded: pg_ctl -w already waited; this checks a real login
            try:
                server.query("select 1")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def wait_until(condition: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll `condition` until it returns something truthy, for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def running_queries(postgres: Postgres, fragment: str) -> list[int]:
    """Backend pids of other sessions whose query contains `fragment`."""
    rows = postgres.query(
        "select pid from pg_stat_activity where query like %s and pid <> pg_backend_pid()",
        f"%{fragment}%",
    )
    return [int(pid) for (pid,) in rows]


@dataclass
class Fault:
    """Answer matching requests with an error instead of forwarding them."""

    status: int
    code: str
    method: str | None = None  # any method when None
    path_contains: str = ""
    times: int | None = None  # every matching request when None
    before: Any = None  # called before the answer (a test kills the client there)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method in (None, method)) and self.path_contains in path


class FaultProxy:
    """A real HTTP proxy in front of moto server that injects S3 faults: boto3 talks to
    it through AWS_ENDPOINT_URL; it forwards to moto unless a Fault matches."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # method, path, status
        # Changes an upstream answer: (request body, answer body) -> answer body.
        self.rewrite: Any = None
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def respond(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def errors(self) -> list[tuple[str, str, int]]:
        return [entry for entry in self.log if entry[2] >= 400]

    def __enter__(self) -> FaultProxy:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = self.owner.respond(self.command, self.path)
        if fault is not None:
            if fault.before is not None:
                fault.before()
            payload = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.code}</Code>"
                f"<Message>injected by the test</Message></Error>"
            ).encode()
            self.owner.log.append((self.command, self.path, fault.status))
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        target = urlsplit(self.owner.upstream)
        connection = http.client.HTTPConnection(str(target.hostname), target.port, timeout=30)
        headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
        headers["Host"] = target.netloc
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if self.owner.rewrite is not None and response.status == 200:
            data = self.owner.rewrite(body, data)
        self.owner.log.append((self.command, self.path, response.status))
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


# --- a run in the background, a model that waits, a webhook receiver ---------------------

SLOW = "pg_sleep(300)"


def add_slow_model(project: Path, sleep: str = SLOW) -> None:
    """A model that waits in PostgreSQL, in the middle of the DAG, and a child of it."""
    marts = project / "models" / "marts"
    (marts / "slow_model.sql").write_text(
        "select o.order_id from {{ ref('stg_orders') }} o cross join (select "
        + sleep
        + ") as slow\n"
    )
    (marts / "after_slow.sql").write_text("select * from {{ ref('slow_model') }}\n")


class Started:
    """The runner as a background process, its output in a file (a pipe nobody reads
    while the test waits could fill up and stall it)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        *args: str,
        verb: str = "run",
        errors: Path | None = None,
    ) -> None:
        """`errors`: a file of its own for stderr (else it goes to `log` too)."""
        self.log = log
        with log.open("w") as handle, (errors or log).open("a") as error_handle:
            self.process = start_cli([verb, *args], env, handle, error_handle if errors else handle)

    def finish(self, timeout: float) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        return code, self.log.read_text()


def hook(httpserver: HTTPServer) -> dict[str, str]:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    return {"DBT_RUNNER_NOTIFY__WEBHOOK_URL": httpserver.url_for("/hook")}


def delivered(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.path == "/hook"]


def by_id(report: dict[str, Any], phase: str) -> dict[str, dict[str, Any]]:
    return {n["unique_id"]: n for n in report["nodes"] if n["phase"] == phase}


def pointer(state: Path) -> str | None:
    path = state / "demo" / "dev" / "state" / "latest.json"
    return str(read_json(path)["run_id"]) if path.is_file() else None


# --- reports and nodes, as the unit tests build them ------------------------------------


STATUS_OF = {"ok": "success", "warn": "warn", "failed": "error", "skipped": "skipped"}


def node_result(
    unique_id: str,
    outcome: Any = "ok",
    status: str | None = None,
    phase: str = "build",
    **extra: Any,
) -> Any:
    """A NodeResult: its name and type from the unique id, dbt's status from the
    outcome unless given."""
    from dbt_runner.report.model import NodeResult

    return NodeResult(
        unique_id=unique_id,
        name=unique_id.rsplit(".", 1)[-1],
        resource_type=unique_id.split(".", 1)[0],
        phase=phase,
        status=status or STATUS_OF[outcome],
        outcome=outcome,  # checked by the model
        **extra,
    )


def run_report(*phases: Any, nodes: list[Any] | None = None, **fields: Any) -> Any:
    """A RunReport of project shop in prod: the given phases and nodes, and fields."""
    from dbt_runner.report.model import RunReport

    defaults = {"runner_version": "1.2.3", "env": "prod", "job": "full", "run_id": "r1"}
    return RunReport(
        **(defaults | {"project": "shop"} | fields), phases=list(phases), nodes=nodes or []
    )


def read_report(out_dir: Path) -> dict[str, Any]:
    """The latest run's report.json."""
    data: dict[str, Any] = read_json(out_dir / "report.json")
    return data


def latest_state(state: Path, env: str = "dev", project: str = "demo") -> dict[str, Any]:
    """The state pointer (latest.json) under a file:// state URL."""
    data: dict[str, Any] = read_json(state / project / env / "state" / "latest.json")
    return data


def lineage_receiver(httpserver: HTTPServer, api_key: str | None = None) -> list[dict[str, Any]]:
    """Every OpenLineage event POSTed to /api/v1/lineage (with its bearer key checked)."""
    from werkzeug import Request, Response

    events: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        if api_key is not None:
            assert request.headers.get("Authorization") == f"Bearer {api_key}"
        events.append(json.loads(request.get_data()))
        return Response(status=201)

    httpserver.expect_request("/api/v1/lineage", method="POST").respond_with_handler(handle)
    return events


# --- a project baked by `dbt-runner prepare` (integration and sanity) ---------------

TARBALL_MACRO = "{% macro answer() %}42{% endmacro %}\n"


def tarball_package() -> bytes:
    """A dbt package as a .tar.gz, as a package registry or a release serves it."""
    files = {
        "extra_utils/dbt_project.yml": "name: extra_utils\nversion: '1.0.0'\nconfig-version: 2\n",
        "extra_utils/macros/answer.sql": TARBALL_MACRO,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        folder = tarfile.TarInfo("extra_utils")  # first, as GitHub's archives have it
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(folder)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def with_packages(project: Path, url: str) -> None:
    """The demo's local package, and one from a tarball only the build can reach; a
    model using it; a var read from the environment in dbt_project.yml."""
    (project / "packages.yml").write_text(
        "packages:\n  - local: local_packages/demo_utils\n"
        f"  - tarball: {url}\n    name: extra_utils\n"
    )
    (project / "package-lock.yml").unlink()
    (project / "models" / "marts" / "answer.sql").write_text(
        "select {{ extra_utils.answer() }} as answer, '{{ var('flavour') }}' as flavour\n"
    )
    path = project / "dbt_project.yml"
    path.write_text(path.read_text() + "\nvars:\n  flavour: \"{{ env_var('DEMO_FLAVOUR') }}\"\n")


def written_after(pointer: dict[str, Any], logs: Iterable[dict[str, Any]]) -> set[str] | None:
    """The model names written into the state's target since the state (`pointer`:
    its latest.json), by the target's write log among `logs` (the next slim job builds
    them again); None when the state has no horizon, or a write never said what it
    wrote or may have rewritten everything (the next job trusts nothing). The tests'
    own reading of the log's documented fields, not the runner's code."""
    horizon = pointer.get("horizon")
    if horizon is None:
        return None
    for log in logs:
        if log.get("target") != pointer["target"]:
            continue
        later = [
            w
            for w in log["writes"]
            if (w["seq"] > horizon["seq"] or w["seq"] in horizon["open"])
            and w["run_id"] not in horizon["covers"]
        ]
        if any(w["open"] or w["whole"] for w in later):
            return None
        return {node.rsplit(".", 1)[-1] for w in later for node in w["nodes"]}
    return set()
