"""A local GitHub API for the pull request's comment."""

from __future__ import annotations

import json
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PR = "12"
REPOSITORY = "acme/analytics"
TOKEN = "ghs_test_token"


class FakeGitHub:
    """GitHub's issue-comment endpoints on a local server, checking what the client
    sends: method, path, headers and body; comments kept in memory."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.comments: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.next_id = 100
        issue = f"/repos/{REPOSITORY}/issues/{PR}/comments"
        headers = {"Authorization": f"token {TOKEN}"}
        server.expect_request(issue, method="GET", headers=headers).respond_with_handler(self.list)
        server.expect_request(issue, method="POST", headers=headers).respond_with_handler(
            self.create
        )
        edit = f"/repos/{REPOSITORY}/issues/comments/{self.next_id}"  # the one it creates
        server.expect_request(edit, method="PATCH", headers=headers).respond_with_handler(self.edit)

    def _comment(self, number: int, body: str) -> dict[str, Any]:
        return {
            "id": number,
            "body": body,
            "url": self.server.url_for(f"/repos/{REPOSITORY}/issues/comments/{number}"),
            "html_url": f"https://github.example/{REPOSITORY}/pull/{PR}#issuecomment-{number}",
        }

    def _body(self, request: Request) -> str:
        assert request.headers["Content-Type"].startswith("application/json")
        assert request.headers["User-Agent"].startswith("dbt-runner/")
        body = json.loads(request.data)
        assert set(body) == {"body"}
        return str(body["body"])

    def list(self, request: Request) -> Response:
        self.calls.append(("GET", request.path))
        return Response(json.dumps(self.comments), content_type="application/json")

    def create(self, request: Request) -> Response:
        self.calls.append(("POST", request.path))
        comment = self._comment(self.next_id, self._body(request))
        self.next_id += 1
        self.comments.append(comment)
        return Response(json.dumps(comment), status=201, content_type="application/json")

    def edit(self, request: Request) -> Response:
        self.calls.append(("PATCH", request.path))
        number = int(request.path.rsplit("/", 1)[1])
        [comment] = [c for c in self.comments if c["id"] == number]
        comment["body"] = self._body(request)
        return Response(json.dumps(comment), content_type="application/json")
