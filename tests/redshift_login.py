"""Redshift's IAM login, where no Redshift can run: AWS issues temporary passwords that
expire, and the cluster accepts a password only while it lives.

- `issuing_credentials`: the tests' proxy in front of moto's Redshift API, shortening
  each GetClusterCredentials answer's lifetime to a few seconds (moto insists on 900 s
  or more) and recording what it issued.
- `login_relay`: the cluster's endpoint. It speaks TLS (the driver's IAM login insists
  on it; `env` makes the client trust the test CA), asks for the password in clear,
  accepts it only if AWS issued it and it has not expired (as Redshift does), records
  each login, and relays the session to a PostgreSQL that trusts local connections:
  with a plain startup (PostgreSQL refuses the driver's Redshift-only parameters),
  Redshift's server_version, and Redshift's `query_group` setting played by
  `application_name`.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

from tests.support import FaultProxy

SSL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877104, 196608
REDSHIFT_VERSION = b"8.0.2"


@dataclass
class Issued:
    """What AWS issued: each password's expiry (epoch seconds), and the calls."""

    lifetime_s: float
    expiry: dict[str, float] = field(default_factory=dict)
    url: str = ""

    @property
    def calls(self) -> int:
        return len(self.expiry)

    def valid(self, password: str) -> bool:
        return time.time() < self.expiry.get(password, 0)


@dataclass
class Login:
    user: str
    password: str
    accepted: bool


@dataclass
class LoginRelay:
    host: str
    port: int
    ca_file: Path
    logins: list[Login] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to trust the relay's certificate (OpenSSL's default
        verify paths read SSL_CERT_FILE)."""
        return {"SSL_CERT_FILE": str(self.ca_file)}


def _shortened(body: bytes, issued: Issued) -> bytes:
    """A GetClusterCredentials answer with the issued lifetime, recorded."""
    text = body.decode()
    password = re.search(r"<DbPassword>(.*?)</DbPassword>", text)
    if password is None:
        return body
    expiry = datetime.now(UTC) + timedelta(seconds=issued.lifetime_s)
    issued.expiry[password.group(1)] = expiry.timestamp()
    stamp = expiry.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return re.sub(
        r"<Expiration>.*?</Expiration>", f"<Expiration>{stamp}</Expiration>", text
    ).encode()


@contextmanager
def issuing_credentials(moto_endpoint: str, lifetime_s: float) -> Iterator[Issued]:
    """A proxy to moto (tests/support.py's, its URL in `.url`) whose Redshift credentials
    live `lifetime_s` seconds."""

    def shorten(request: bytes, answer: bytes) -> bytes:
        if b"Action=GetClusterCredentials" not in request:
            return answer
        return _shortened(answer, issued)

    issued = Issued(lifetime_s)
    with FaultProxy(moto_endpoint) as proxy:
        proxy.rewrite = shorten
        issued.url = proxy.endpoint
        yield issued


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        data += chunk
    return data


def _message(conn: socket.socket) -> tuple[bytes, bytes]:
    kind = _read_exactly(conn, 1)
    (length,) = struct.unpack("!i", _read_exactly(conn, 4))
    return kind, _read_exactly(conn, length - 4)


def _send(conn: socket.socket, kind: bytes, body: bytes) -> None:
    conn.sendall(kind + struct.pack("!i", len(body) + 4) + body)


def _startup(conn: socket.socket, tls: ssl.SSLContext) -> tuple[socket.socket, dict[str, str]]:
    """The connection (TLS when the client asks for it) and the client's startup
    parameters."""
    while True:
        length, code = struct.unpack("!ii", _read_exactly(conn, 8))
        body = _read_exactly(conn, length - 8)
        if code == SSL_REQUEST:
            conn.sendall(b"S")
            conn = tls.wrap_socket(conn, server_side=True)
            continue
        if code == GSSENC_REQUEST:
            conn.sendall(b"N")
            continue
        if code != PROTOCOL_3:
            raise ConnectionError(f"unexpected startup code {code}")
        parts = body.rstrip(b"\0").split(b"\0")
        pairs = zip(parts[::2], parts[1::2], strict=False)
        return conn, {k.decode(): v.decode() for k, v in pairs}


def _password(conn: socket.socket) -> str:
    _send(conn, b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
    kind, body = _message(conn)
    if kind != b"p":
        raise ConnectionError(f"expected a password message, got {kind!r}")
    return body.rstrip(b"\0").decode()


def _refuse(conn: socket.socket, user: str) -> None:
    fields = [
        b"SFATAL",
        b"VFATAL",
        b"C28000",
        f'Mpassword authentication failed for user "{user}"'.encode(),
    ]
    _send(conn, b"E", b"\0".join(fields) + b"\0\0")
    conn.close()


def _greeting(server: socket.socket, client: socket.socket) -> None:
    """PostgreSQL's messages up to its first ReadyForQuery, with its server_version
    made Redshift's (the driver parses it as a version number)."""
    while True:
        kind, body = _message(server)
        if kind == b"S" and body.startswith(b"server_version\0"):
            body = b"server_version\0" + REDSHIFT_VERSION + b"\0"
        _send(client, kind, body)
        if kind in (b"Z", b"E"):
            return


def _client_to_server(client: socket.socket, server: socket.socket) -> None:
    """The client's messages, Redshift's query_group played by application_name."""
    try:
        while True:
            kind, body = _message(client)
            if kind in (b"Q", b"P"):
                body = body.replace(b"query_group", b"application_name")
            _send(server, kind, body)
    except (ConnectionError, OSError):
        _close(client, server)


def _server_to_client(server: socket.socket, client: socket.socket) -> None:
    try:
        while chunk := server.recv(65536):
            client.sendall(chunk)
    except OSError:
        pass
    _close(client, server)


def _close(*ends: socket.socket) -> None:
    for end in ends:
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()


def _serve(
    client: socket.socket,
    relay: LoginRelay,
    issued: Issued,
    tls: ssl.SSLContext,
    upstream: tuple[str, int, str, str],
) -> None:
    host, port, user, database = upstream
    try:
        client, params = _startup(client, tls)
        password = _password(client)
        accepted = issued.valid(password)
        relay.logins.append(Login(params.get("user", ""), password, accepted))
        if not accepted:
            _refuse(client, params.get("user", ""))
            return
        server = socket.create_connection((host, port))
        body = b"".join(f"{k}\0{v}\0".encode() for k, v in (("user", user), ("database", database)))
        server.sendall(struct.pack("!ii", len(body) + 9, PROTOCOL_3) + body + b"\0")
        _greeting(server, client)
    except (ConnectionError, OSError):
        client.close()
        return
    threading.Thread(target=_server_to_client, args=(server, client), daemon=True).start()
    _client_to_server(client, server)


@contextmanager
def login_relay(
    issued: Issued, upstream_host: str, upstream_port: int, user: str, database: str
) -> Iterator[LoginRelay]:
    """Listen on 127.0.0.1, accept the logins `issued` allows, and relay each session to
    the PostgreSQL at `upstream_host`:`upstream_port` (trust authentication) as `user`
    on `database`."""
    listener = socket.create_server(("127.0.0.1", 0))
    authority = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
    folder = Path(tempfile.mkdtemp(prefix="redshift-login-"))
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    relay = LoginRelay("127.0.0.1", listener.getsockname()[1], folder / "ca.pem")
    upstream = (upstream_host, upstream_port, user, database)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            arguments = (client, relay, issued, tls, upstream)
            threading.Thread(target=_serve, args=arguments, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield relay
    finally:
        listener.close()
