"""A local stand-in for ECS: an HTTP server speaking ECS's JSON protocol (RunTask,
DescribeTasks, StopTask, ListTasks, DescribeTaskDefinition) that runs each task's
container as the REAL image with `docker` (the task definition's environment, command,
user and memory, the overrides applied), writes the container's output into moto's
CloudWatch Logs as it is produced (the awslogs stream ECS would name), and moves the
task through PROVISIONING, PENDING, RUNNING and STOPPED with the real exit code, the
OOM kill docker saw, and ECS's stop codes.

Failure switches (`Switches`): RunTask `failures[]`, throttled DescribeTasks, logs that
reach CloudWatch late. An image that cannot be pulled and a task out of memory are
real: a tag that does not exist (docker never pulls here), a memory limit too small.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REGION, ACCOUNT = "us-east-1", "123456789012"
TARGET = "AmazonEC2ContainerServiceV20141113."


@dataclass
class Switches:
    run_failures: list[dict[str, str]] = field(default_factory=list)  # one per RunTask call
    throttled_describes: int = 0  # the next DescribeTasks calls that are throttled
    log_lag_s: float = 0.0  # how late each log line reaches CloudWatch


@dataclass
class Task:
    arn: str
    cluster: str
    definition: dict[str, Any]
    overrides: dict[str, Any]
    started_by: str
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    stopped_at: float | None = None
    exited_at: float | None = None  # when the container's process ended (benchmarks)
    container_id: str | None = None

    @property
    def id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def described(self) -> dict[str, Any]:
        container = self.definition["containerDefinitions"][0]
        described: dict[str, Any] = {
            "name": container["name"],
            "lastStatus": self.last_status,
            "taskArn": self.arn,
        }
        if self.exit_code is not None:
            described["exitCode"] = self.exit_code
        if self.container_reason:
            described["reason"] = self.container_reason
        task = {
            "taskArn": self.arn,
            "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{self.cluster}",
            "taskDefinitionArn": self.definition["taskDefinitionArn"],
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "startedBy": self.started_by,
            "overrides": {"containerOverrides": [self.overrides]},
            "containers": [described],
            "createdAt": self.created_at,
        }
        optional = {
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "startedAt": self.started_at,
            "stoppedAt": self.stopped_at,
        }
        return task | {k: v for k, v in optional.items() if v is not None}


class EcsStandIn:
    """The control plane: task definitions registered by the test, tasks run with
    docker. `docker`: the docker binary; `logs`: boto3's CloudWatch Logs client (moto);
    `extra_env`: what every container also gets (moto's endpoint, say)."""

    def __init__(self, docker: str, logs: Any, extra_env: dict[str, str]) -> None:
        self.docker, self.logs, self.extra_env = docker, logs, extra_env
        self.switches = Switches()
        self.definitions: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, Task] = {}
        self.tokens: dict[str, str] = {}
        self.calls: list[str] = []
        self.throttled = 0
        self.url = ""
        self.lock = threading.Lock()

    def register(self, definition: dict[str, Any]) -> str:
        family = str(definition["family"])
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:1"
        self.definitions[family] = definition | {"taskDefinitionArn": arn, "revision": 1}
        return family

    # --- the API ---------------------------------------------------------------------

    def answer(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append(operation)
        if operation == "DescribeTasks" and self.switches.throttled_describes > 0:
            self.switches.throttled_describes -= 1
            self.throttled += 1
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            return 400, {"__type": "InvalidParameterException", "message": operation}
        try:
            return 200, handler(body)
        except KeyError as exc:
            return 400, {"__type": "ClientException", "message": f"unknown: {exc}"}

    def _definition(self, name: str) -> dict[str, Any]:
        family = name.rsplit("/", 1)[-1].split(":", maxsplit=1)[0]
        definition: dict[str, Any] = self.definitions[family]
        return definition

    def _DescribeTaskDefinition(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"taskDefinition": self._definition(body["taskDefinition"])}

    def _RunTask(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            token = body.get("clientToken")
            if token in self.tokens:
                return {"tasks": [self.tasks[self.tokens[token]].described()], "failures": []}
            if self.switches.run_failures:
                failure = self.switches.run_failures.pop(0)
                return {"tasks": [], "failures": [{"arn": body["cluster"], **failure}]}
            definition = self._definition(body["taskDefinition"])
            [overrides] = body.get("overrides", {}).get("containerOverrides", [{}]) or [{}]
            arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{body['cluster']}/{uuid.uuid4().hex}"
            task = Task(arn, body["cluster"], definition, overrides, body.get("startedBy", ""))
            self.tasks[arn] = task
            if token:
                self.tokens[token] = arn
        threading.Thread(target=self._run, args=(task,), daemon=True).start()
        return {"tasks": [task.described()], "failures": []}

    def _DescribeTasks(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [self.tasks[arn].described() for arn in body["tasks"] if arn in self.tasks]
        missing = [
            {"arn": arn, "reason": "MISSING"} for arn in body["tasks"] if arn not in self.tasks
        ]
        return {"tasks": found, "failures": missing}

    def _ListTasks(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = body.get("desiredStatus", "RUNNING")
        arns = [
            t.arn
            for t in self.tasks.values()
            if t.cluster == body.get("cluster")
            and t.desired_status == wanted
            and (not body.get("startedBy") or t.started_by == body["startedBy"])
        ]
        return {"taskArns": arns}

    def _StopTask(self, body: dict[str, Any]) -> dict[str, Any]:
        task = self.tasks[body["task"]]
        task.desired_status = "STOPPED"
        task.stop_code, task.stopped_reason = (
            "UserInitiated",
            body.get("reason", "Task stopped by user"),
        )
        if task.container_id:
            grace = str(task.definition["containerDefinitions"][0].get("stopTimeout", 30))
            command = [self.docker, "stop", "-t", grace, task.container_id]
            threading.Thread(
                target=subprocess.run,
                args=(command,),
                kwargs={"check": False, "capture_output": True},
                daemon=True,
            ).start()
        return {"task": task.described()}

    # --- a task's life -------------------------------------------------------------------

    def _docker_args(self, task: Task) -> list[str]:
        container = task.definition["containerDefinitions"][0]
        env = {e["name"]: e["value"] for e in container.get("environment", [])} | self.extra_env
        env |= {e["name"]: e["value"] for e in task.overrides.get("environment", [])}
        args = ["create", "--pull", "never", "--network", "host", "--name", f"ecs-{task.id}"]
        if container.get("user"):
            args += ["--user", str(container["user"])]
        memory = container.get("memory") or task.definition.get("memory")
        if memory:
            args += ["--memory", f"{int(memory)}m", "--memory-swap", f"{int(memory)}m"]
        args += [flag for k, v in env.items() for flag in ("-e", f"{k}={v}")]
        command = task.overrides.get("command") or container.get("command") or []
        return [*args, container["image"], *command]

    def _run(self, task: Task) -> None:
        task.last_status = "PENDING"
        created = subprocess.run(
            [self.docker, *self._docker_args(task)], check=False, capture_output=True, text=True
        )
        if created.returncode != 0:
            reason = f"CannotPullContainerError: {created.stderr.strip()[:200]}"
            self._stopped(task, "TaskFailedToStart", reason, container_reason=reason)
            return
        task.container_id = created.stdout.strip()
        if task.desired_status == "STOPPED":  # stopped before it ran
            self._stopped(task, task.stop_code or "UserInitiated", task.stopped_reason or "")
            return
        stream = self._log_stream(task)
        process = subprocess.Popen(
            [self.docker, "start", "-a", task.container_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        task.last_status, task.started_at = "RUNNING", time.time()
        shipped = self._ship_logs(process, stream)
        process.wait()
        task.exited_at = time.time()
        state = json.loads(
            subprocess.run(
                [self.docker, "inspect", task.container_id],
                check=False,
                capture_output=True,
                text=True,
            ).stdout
        )[0]["State"]
        shipped.join()
        oom = (
            "OutOfMemoryError: Container killed due to memory usage"
            if state.get("OOMKilled")
            else None
        )
        task.exit_code = int(state["ExitCode"])
        subprocess.run(
            [self.docker, "rm", "-f", task.container_id], check=False, capture_output=True
        )
        code = task.stop_code or "EssentialContainerExited"
        self._stopped(task, code, task.stopped_reason or "Essential container in task exited", oom)

    def _stopped(
        self, task: Task, code: str, reason: str, container_reason: str | None = None
    ) -> None:
        task.stop_code, task.stopped_reason = code, reason
        task.container_reason = container_reason
        task.desired_status, task.stopped_at = "STOPPED", time.time()
        task.last_status = "STOPPED"

    def _log_stream(self, task: Task) -> tuple[str, str] | None:
        container = task.definition["containerDefinitions"][0]
        options = container.get("logConfiguration", {}).get("options", {})
        if "awslogs-group" not in options:
            return None
        group = options["awslogs-group"]
        stream = f"{options['awslogs-stream-prefix']}/{container['name']}/{task.id}"
        with suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        return group, stream

    def _ship_logs(
        self, process: subprocess.Popen[bytes], stream: tuple[str, str] | None
    ) -> threading.Thread:
        """Each line to CloudWatch as it is written, in order, each `log_lag_s` late:
        as with awslogs, the last lines may arrive after the task has stopped."""
        pending: queue.Queue[tuple[float, dict[str, Any]] | None] = queue.Queue()

        def read() -> None:
            assert process.stdout is not None
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                if stream is not None and line:
                    now = time.time()
                    event = {"timestamp": int(now * 1000), "message": line}
                    pending.put((now + self.switches.log_lag_s, event))
            pending.put(None)

        def send() -> None:
            while (item := pending.get()) is not None:
                due, event = item
                time.sleep(max(0.0, due - time.time()))  # the lag the switch asks for
                assert stream is not None
                self.logs.put_log_events(
                    logGroupName=stream[0], logStreamName=stream[1], logEvents=[event]
                )

        threading.Thread(target=send, daemon=True).start()
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread


@contextmanager
def ecs_standin(docker: str, logs: Any, extra_env: dict[str, str]) -> Iterator[EcsStandIn]:
    """The stand-in on 127.0.0.1 (its URL in `.url`: AWS_ENDPOINT_URL_ECS); every task
    it started is removed at the end."""
    standin = EcsStandIn(docker, logs, extra_env)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            operation = self.headers.get("X-Amz-Target", "").removeprefix(TARGET)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            status, answer = standin.answer(operation, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        names = [f"ecs-{task.id}" for task in standin.tasks.values()]
        if names:
            subprocess.run([docker, "rm", "-f", *names], check=False, capture_output=True)
