"""How notifications travel: HTTP with a timeout and bounded retries (urllib3's
Retry: backoff, 429/5xx and connection errors), HMAC-SHA256 signatures, and trigger
header values read from the environment or Secrets Manager."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from dbt_runner.config import NotifySettings
from dbt_runner.errors import RunnerError


class NotifyError(Exception):
    pass


def safe_url(url: str) -> str:
    """A URL fit for a log line: scheme, host, port and path; no query or credentials."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Sender:
    """POSTs with a timeout and bounded retries."""

    def __init__(self, timeout_s: float, retries: int) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.timeout_s = timeout_s
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST", "PUT"}),
            raise_on_status=True,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(self, url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> None:
        """`url`: where; `body`: what; `headers`: with it; `method`: POST or PUT."""
        import requests

        try:
            response = self.session.request(
                method, url, data=body, headers=headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise NotifyError(" ".join(str(exc).split())[:200]) from exc
        if response.status_code >= 400:
            raise NotifyError(f"HTTP {response.status_code}")


def resolve_header(value: str, secrets: Callable[[str], str]) -> str:
    """A trigger header value: literal, `env:NAME` or `secret:SECRET_ID[#key]`."""
    if value.startswith("env:"):
        name = value[len("env:") :]
        if name not in os.environ:
            raise NotifyError(f"header variable {name} is not set")
        return os.environ[name]
    if value.startswith("secret:"):
        try:
            return secrets(value[len("secret:") :])
        except RunnerError as exc:
            raise NotifyError(exc.message) from exc
    return value


def sender_for(settings: NotifySettings, deadline: float | None) -> Sender:
    """A sender with the settings' timeout and retries, or, against a deadline, what is
    left of it and no retry."""
    if deadline is None:
        return Sender(settings.timeout_s, settings.retries)
    left = deadline - time.monotonic()
    if left <= 0.1:
        raise NotifyError("not sent: the time for notifying after a stop was spent")
    return Sender(min(settings.timeout_s, left), 0)
