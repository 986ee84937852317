"""The index client's page parsers and the content-addressed cache, without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bundler.fetch import Cache, choice_key, parse_html, parse_json, safe_url

H = "ab" * 32


def test_pep503_html_relative_links_hashes_and_yanked() -> None:
    page = f"""<!DOCTYPE html><html><body>
    <a href="../../files/tiny-1.0-py3-none-any.whl#sha256={H.upper()}">tiny-1.0-py3-none-any.whl</a><br>
    <a href="https://cdn.example/t/tiny-1.0.tar.gz" data-yanked="">tiny-1.0.tar.gz</a>
    </body></html>"""
    files = parse_html(page, "http://127.0.0.1:8000/simple/tiny/")
    assert [(f.filename, f.url, f.sha256, f.yanked) for f in files] == [
        ("tiny-1.0-py3-none-any.whl", "http://127.0.0.1:8000/files/tiny-1.0-py3-none-any.whl", H, False),
        ("tiny-1.0.tar.gz", "https://cdn.example/t/tiny-1.0.tar.gz", None, True),
    ]


def test_pep691_json_sizes_and_relative_urls() -> None:
    data = {
        "meta": {"api-version": "1.1"},
        "name": "tiny",
        "files": [
            {
                "filename": "tiny-1.0-py3-none-any.whl",
                "url": "/f/tiny.whl",
                "hashes": {"sha256": H},
                "size": 42,
            },
            {"filename": "tiny-1.0.tar.gz", "url": "tiny-1.0.tar.gz", "hashes": {}, "yanked": "broken"},
        ],
    }
    files = parse_json(data, "https://pypi.example/simple/tiny/")
    assert [(f.url, f.sha256, f.size, f.yanked) for f in files] == [
        ("https://pypi.example/f/tiny.whl", H, 42, False),
        ("https://pypi.example/simple/tiny/tiny-1.0.tar.gz", None, None, True),
    ]


def test_safe_url_drops_credentials_and_fragment() -> None:
    assert (
        safe_url("https://user:s3cret@idx.example:8443/simple/x/#sha256=1")
        == "https://idx.example:8443/simple/x/"
    )


def test_cache_detects_corruption_and_keys_by_target(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    data = b"wheel bytes"
    digest = hashlib.sha256(data).hexdigest()
    tmp = tmp_path / "incoming.part"
    tmp.write_bytes(data)
    stored = cache.put(tmp, digest, "tiny-1.0-py3-none-any.whl")
    assert stored == tmp_path / "sha256" / digest[:2] / digest / "tiny-1.0-py3-none-any.whl"
    assert cache.get(digest, stored.name) == stored
    stored.write_bytes(b"flipped")
    assert cache.get(digest, stored.name) is None
    assert not stored.exists()  # removed, so the next build fetches it again
    a = choice_key("tiny", "1.0", (H,), "cp311-cp311-manylinux_2_17_x86_64")
    assert a == choice_key("tiny", "1.0", (H,), "cp311-cp311-manylinux_2_17_x86_64")
    assert a != choice_key("tiny", "1.0", (H,), "cp312-cp312-manylinux_2_17_x86_64")
    assert a != choice_key("tiny", "1.0", ("cd" * 32,), "cp311-cp311-manylinux_2_17_x86_64")
