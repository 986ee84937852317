"""A loopback Kaggle API server for tests: the RPCs the installed ``kaggle`` client really sends.

The client (kagglesdk) posts JSON to ``/api/v1/<service>/<Method>``; blobs go up through
``StartBlobUpload`` and then a ``PUT`` of the bytes to the returned ``createUrl``. With
``KAGGLE_API_ENVIRONMENT=LOCALHOST`` the client targets ``http://localhost/api/v1/...``; the
server also acts as the HTTP proxy for those requests (``HTTP_PROXY`` points at it), so the real
client reaches it unchanged (see `KaggleServer.client_env`).

Every request is recorded (`KaggleServer.requests`) so tests assert on what was really sent.
Faults (`Faults`) inject what the real service does on a bad day: 429 with Retry-After, 503 on
PUT, a dataset that ends FAILED, a kernel that ends in ERROR or leaves no output, an expired
resumable upload.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

USERNAME = "tester"
TOKEN = "KGAT_loopbacktesttoken0123456789"  # noqa: S105 - a fake that looks real, so redaction is exercised
KEY = "0123456789abcdef0123456789abcdef"


@dataclass
class Faults:
    """What to get wrong, and how often."""

    rate_limit: dict[str, int] = field(default_factory=dict)  # RPC method -> how many 429s first
    retry_after: str = "1"
    put_503: int = 0  # how many PUTs of blob bytes get a 503
    expire_upload: bool = False  # a resume query after an interrupted PUT finds the session gone
    dataset_failed: bool = False  # new dataset versions end FAILED instead of READY
    kernel_error: str | None = None  # kernel runs end in ERROR with this failure message
    no_output: bool = False  # a kernel's output listing answers 404 (a run that left nothing)


@dataclass
class Recorded:
    """One request as received (credentials reduced to their kind)."""

    method: str
    path: str
    rpc: str | None  # e.g. "CreateDataset"
    body: Any
    auth: str  # "bearer", "basic:<user>", "none" or "invalid"
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class Blob:
    name: str
    length: int
    data: bytes = b""
    complete: bool = False


@dataclass
class Kernel:
    ref: str
    request: dict[str, Any]
    version: int
    polls: int = 0


class KaggleServer:
    """The server and its state; use as a context manager."""

    def __init__(self, *, faults: Faults | None = None, status_polls: int = 1, kernel_polls: int = 2) -> None:
        self.faults = faults or Faults()
        self.status_polls = status_polls  # GetDatasetStatus answers before READY/FAILED
        self.kernel_polls = kernel_polls  # GetKernelSessionStatus answers before COMPLETE/ERROR
        self.requests: list[Recorded] = []
        self.datasets: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, Blob] = {}
        self.kernels: dict[str, Kernel] = {}
        self.submissions: list[dict[str, Any]] = []
        # A kernel run's output files by path under /kaggle/working ("weights/v50.pt" has a folder).
        self.kernel_outputs: dict[str, bytes] = {"submission.csv": b"planet_id,mu_0\n1,0.5\n"}
        self.kernel_log = '[{"stream_name":"stdout","time":0.1,"data":"boot ok\\n"}]'
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> KaggleServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def client_env(self) -> dict[str, str]:
        """Variables that route the real kaggle client here (and nowhere else)."""
        proxy = self.url
        return {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "HTTP_PROXY": proxy,
            "http_proxy": proxy,
            "HTTPS_PROXY": "http://127.0.0.1:9",  # anything https (the real service) fails fast
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1",  # uploads/downloads go straight here; localhost via the proxy
            "no_proxy": "127.0.0.1",
        }

    def rpcs(self, name: str | None = None) -> list[Recorded]:
        """Recorded RPC calls, optionally of one method."""
        return [r for r in self.requests if r.rpc and (name is None or r.rpc == name)]

    def seed_dataset(self, ref: str, notes: str, *, status: str = "READY") -> None:
        """Pretend ``ref`` already exists with one version carrying ``notes``."""
        self.datasets[ref] = {"title": ref, "versions": [{"versionNumber": 1, "versionNotes": notes}]}
        self.datasets[ref]["status"] = status
        self.datasets[ref]["polls"] = self.status_polls

    def seed_kernel(self, ref: str) -> None:
        """Pretend kernel ``ref`` (owner/slug) was pushed once; its run ends as the faults say."""
        self.kernels[ref] = Kernel(ref, {"slug": ref}, 1)

    def next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter


@dataclass
class _Redirect:
    location: str


class _Reply(Exception):
    """Raised by RPC handlers to answer with an error status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _auth_kind(header: str | None) -> str:
    if not header:
        return "none"
    if header == f"Bearer {TOKEN}":
        return "bearer"
    if header.startswith("Basic "):
        user, _, key = base64.b64decode(header[6:]).decode().partition(":")
        return f"basic:{user}" if key == KEY else "invalid"
    return "invalid"


def _handler_for(server: KaggleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return  # quiet: tests read `server.requests`

        def _path(self) -> str:
            return urlsplit(self.path).path  # proxy requests carry the absolute URL

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
            self._send(
                status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}
            )

        def do_POST(self) -> None:
            path = self._path()
            raw = self._body()
            parts = path.strip("/").split("/")
            rpc = parts[-1] if path.startswith("/api/v1/") and len(parts) == 4 else None
            body: Any = json.loads(raw or b"{}") if rpc else {"bytes": len(raw)}
            record = Recorded("POST", path, rpc, body, _auth_kind(self.headers.get("Authorization")))
            server.requests.append(record)
            if rpc is None:
                record.status = 404
                self._json(404, {"code": 404, "message": f"no route {path}"})
                return
            try:
                left = server.faults.rate_limit.get(rpc, 0)
                if left:
                    server.faults.rate_limit[rpc] = left - 1
                    headers = {"Retry-After": server.faults.retry_after}
                    raise _Reply(429, "Too many requests", headers)
                if rpc != "IntrospectToken" and record.auth in ("none", "invalid"):
                    raise _Reply(401, "Unauthenticated")
                result = _rpc(server, rpc, body)
            except _Reply as reply:
                record.status = reply.status
                self._json(reply.status, {"code": reply.status, "message": reply.message}, reply.headers)
                return
            if isinstance(result, _Redirect):  # file downloads answer with a signed-URL redirect
                record.status = 302
                self._send(302, b"", {"Location": result.location})
                return
            record.status = 200
            self._json(200, result)

        def do_PUT(self) -> None:
            path = self._path()
            raw = self._body()
            content_range = self.headers.get("Content-Range", "")
            body = {"bytes": len(raw), "content_range": content_range}
            record = Recorded("PUT", path, None, body, "none")
            server.requests.append(record)
            blob = server.blobs.get(path.rsplit("/", 1)[-1]) if path.startswith("/upload/") else None
            if blob is None:
                record.status = 404
                self._send(404, b"upload session not found")
            elif content_range.startswith("bytes */"):  # resume query after an interruption
                record.status = 404 if server.faults.expire_upload else 308
                self._send(record.status, b"")
            elif server.faults.put_503:
                server.faults.put_503 -= 1
                record.status = 503
                self._send(503, b"backend unavailable")
            elif len(raw) != blob.length:
                record.status = 400
                self._send(400, b"length mismatch")
            else:
                blob.data, blob.complete = raw, True
                record.status = 200
                self._json(200, {"name": blob.name, "size": len(raw)})

        def do_GET(self) -> None:
            path = self._path()
            server.requests.append(Recorded("GET", path, None, {}, "none", 200))
            name = path.rsplit("/", 1)[-1]
            if path.startswith("/blobs/") and name in server.blobs:
                data: bytes | None = server.blobs[name].data
            elif path.startswith("/files/"):  # /files/<owner>/<slug>/<output path, folders included>
                data = server.kernel_outputs.get(path.split("/", 4)[-1])
            else:
                data = None
            if data is None:
                self._send(404, b"not found")
                return
            self._send(200, data, {"Content-Type": "application/octet-stream"})

    return Handler


def _dataset(server: KaggleServer, owner: str, slug: str) -> dict[str, Any]:
    found = server.datasets.get(f"{owner}/{slug}")
    if found is None:
        raise _Reply(404, f"Dataset {owner}/{slug} not found")
    return found


def _files(server: KaggleServer, files: list[dict[str, Any]]) -> list[str]:
    tokens = [str(f.get("token")) for f in files]
    for token in tokens:
        blob = server.blobs.get(token)
        if blob is None or not blob.complete:
            raise _Reply(400, f"file token {token} was never uploaded")
    return tokens


def _new_version(server: KaggleServer, data: dict[str, Any], notes: str | None, tokens: list[str]) -> int:
    number = len(data["versions"]) + 1
    data["versions"].append({"versionNumber": number, "versionNotes": notes, "tokens": tokens})
    data["status"] = "FAILED" if server.faults.dataset_failed else "READY"
    data["polls"] = 0
    return number


def _rpc(server: KaggleServer, rpc: str, body: dict[str, Any]) -> Any:  # noqa: PLR0911, PLR0912 - one router
    if rpc == "IntrospectToken":
        ok = body.get("token") == TOKEN
        return {"active": ok, "username": USERNAME if ok else "", "scope": "all"}
    if rpc == "StartBlobUpload":
        token = f"blob-{server.next_id()}"
        server.blobs[token] = Blob(str(body.get("name")), int(body.get("contentLength") or 0))
        return {"token": token, "createUrl": f"{server.url}/upload/{token}"}
    if rpc == "GetDataset":
        data = _dataset(server, body.get("ownerSlug", ""), body.get("datasetSlug", ""))
        versions = [{k: v for k, v in ver.items() if k != "tokens"} for ver in data["versions"]]
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        return {
            "id": 1,
            "ref": ref,
            "title": data["title"],
            "url": f"http://localhost/datasets/{ref}",
            "currentVersionNumber": len(versions),
            "versions": versions[::-1],  # newest first, as the service lists them
        }
    if rpc == "DownloadDataset":
        data = _dataset(server, body.get("ownerSlug", ""), body.get("datasetSlug", ""))
        tokens = data["versions"][-1].get("tokens", []) if data["versions"] else []
        wanted = [t for t in tokens if server.blobs[t].name == body.get("fileName")]
        if not wanted:
            raise _Reply(404, f"file {body.get('fileName')} not found")
        return _Redirect(f"{server.url}/blobs/{wanted[0]}")
    if rpc == "GetDatasetStatus":
        data = _dataset(server, body.get("ownerSlug", ""), body.get("datasetSlug", ""))
        data["polls"] += 1
        return {"status": data["status"] if data["polls"] > server.status_polls else "BLOBS_RECEIVED"}
    if rpc == "CreateDataset":
        ref = f"{body.get('ownerSlug')}/{body.get('slug')}"
        if ref in server.datasets:
            return {"status": "error", "error": f"slug {ref} already in use"}
        tokens = _files(server, body.get("files", []))
        server.datasets[ref] = {"title": body.get("title"), "versions": [], "request": body}
        _new_version(server, server.datasets[ref], None, tokens)
        return {"ref": ref, "url": f"http://localhost/datasets/{ref}", "status": "Ok"}
    if rpc == "CreateDatasetVersion":
        data = _dataset(server, body.get("ownerSlug", ""), body.get("datasetSlug", ""))
        version = body.get("body") or {}
        tokens = _files(server, version.get("files", []))
        _new_version(server, data, version.get("versionNotes"), tokens)
        ref = f"{body.get('ownerSlug')}/{body.get('datasetSlug')}"
        return {"ref": ref, "url": f"http://localhost/datasets/{ref}", "status": "Ok"}
    if rpc == "SaveKernel":
        ref = str(body.get("slug"))
        previous = server.kernels.get(ref)
        version = previous.version + 1 if previous else 1
        server.kernels[ref] = Kernel(ref, body, version)
        return {"ref": f"/code/{ref}", "url": f"http://localhost/code/{ref}", "versionNumber": version}
    if rpc == "GetKernelSessionStatus":
        kernel = server.kernels.get(f"{body.get('userName')}/{body.get('kernelSlug')}")
        if kernel is None:
            raise _Reply(404, "Kernel not found")
        kernel.polls += 1
        if kernel.polls <= server.kernel_polls:
            return {"status": "RUNNING" if kernel.polls > 1 else "QUEUED"}
        if server.faults.kernel_error:
            return {"status": "ERROR", "failureMessage": server.faults.kernel_error}
        return {"status": "COMPLETE"}
    if rpc == "ListKernelSessionOutput":
        ref = f"{body.get('userName')}/{body.get('kernelSlug')}"
        if server.faults.no_output:
            raise _Reply(404, f"no output for kernel {ref}")
        files = [
            {"fileName": n, "url": f"{server.url}/files/{ref}/{n}"} for n in sorted(server.kernel_outputs)
        ]
        return {"files": files, "log": server.kernel_log}
    if rpc == "CreateCodeSubmission":
        server.submissions.append(body)
        return {"message": "Submission successful", "ref": 1000 + len(server.submissions)}
    raise _Reply(404, f"RPC {rpc} is not served by the loopback server")
