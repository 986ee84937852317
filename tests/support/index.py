"""A PEP 503 'simple' package index on 127.0.0.1, serving a folder of wheels/sdists.

It records every request path so tests can assert what was (or was not) fetched, and stops
when the context exits. With ``metadata=True`` it also serves each wheel's METADATA as PEP 658
``<file>.metadata`` (announced with ``data-core-metadata="sha256=..."``), as PyPI does.
``published`` replaces the ``#sha256=`` a link announces for a file name (an index whose published
hash does not match its file). File names that need quoting in a URL (``torch-2.13.0+cpu-...``,
which pip requests as ``%2B``) are served as the PyTorch index serves them.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return _normalise(filename.split("-", maxsplit=1)[0])
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    return _normalise(stem.rsplit("-", 1)[0])


@dataclass
class LocalIndex:
    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple"


def wheel_metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return zf.read(name)


@contextmanager
def serve_index(
    folder: Path, *, metadata: bool = False, published: dict[str, str] | None = None
) -> Iterator[LocalIndex]:
    """Serve ``folder`` as ``http://127.0.0.1:<port>/simple/`` for the duration of the block."""
    index = LocalIndex(root=folder)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep test output quiet
            return

        def do_GET(self) -> None:
            index.requests.append(self.path)
            parts = [urllib.parse.unquote(p) for p in self.path.split("?")[0].split("/") if p]
            if parts[:1] == ["simple"] and len(parts) == 2:
                project = _normalise(parts[1])
                links = []
                for f in sorted(folder.iterdir()):
                    if f.is_file() and _project_of(f.name) == project:
                        digest = (published or {}).get(f.name) or hashlib.sha256(f.read_bytes()).hexdigest()
                        core = ""
                        if metadata and f.name.endswith(".whl"):
                            meta_sha = hashlib.sha256(wheel_metadata(f)).hexdigest()
                            core = f' data-core-metadata="sha256={meta_sha}"'
                        href = f"/files/{html.escape(f.name)}#sha256={digest}"
                        links.append(f'<a href="{href}"{core}>{f.name}</a>')
                if not links:
                    self.send_error(404)
                    return
                body = ("<!DOCTYPE html><html><body>\n" + "<br>\n".join(links) + "\n</body></html>").encode()
                self._send(body, "text/html")
            elif parts[:1] == ["simple"] and len(parts) == 1:
                names = sorted({_project_of(f.name) for f in folder.iterdir() if f.is_file()})
                body = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names).encode()
                self._send(body, "text/html")
            elif metadata and parts[:1] == ["files"] and len(parts) == 2 and parts[1].endswith(".metadata"):
                wheel = folder / parts[1].removesuffix(".metadata")
                if not wheel.is_file():
                    self.send_error(404)
                    return
                self._send(wheel_metadata(wheel), "application/octet-stream")
            elif parts[:1] == ["files"] and len(parts) == 2 and (folder / parts[1]).is_file():
                self._send((folder / parts[1]).read_bytes(), "application/octet-stream")
            else:
                self.send_error(404)

        def do_HEAD(self) -> None:  # uv probes range-request support with HEAD before a download
            self.do_GET()

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
