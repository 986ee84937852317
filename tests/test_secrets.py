"""Credentials never reach a bundle: the build fails naming file and line, and never prints the value."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

import pytest

from bundler import secrets
from bundler.errors import VerificationError
from tests import test_build as tb
from tests.test_build import TinyProject, run_cli

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny

# Fake credentials, assembled at run time so this file itself does not look like one.
KAGGLE_HEX = "".join("0123456789abcdef"[(i * 7) % 16] for i in range(32))
AWS_ID = "AKIA" + "Q" * 12 + "WXYZ"
GH_TOKEN = "ghp_" + "x1Y2" * 9
KGAT = "KGAT_" + "a1B2c3D4" * 3
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("name", "content", "kind", "line"),
    [
        ("notes.txt", f"hello\nKAGGLE_KEY={KAGGLE_HEX}\n", "Kaggle key assignment", 2),
        ("cfg.yaml", f"x: 1\ny: 2\ntoken: {KGAT}\n", "Kaggle API token", 3),
        ("creds.json", '{"username": "me", "key": "' + KAGGLE_HEX + '"}', "kaggle.json key", 1),
        ("run.sh", f"export AWS_ACCESS_KEY_ID={AWS_ID}\n", "AWS access key id", 1),
        ("ci.cfg", f"\n\n\nauth = {GH_TOKEN}\n", "GitHub token", 4),
        ("key.txt", f"{PEM}\nMIIE\n", "private key", 1),
        ("app.py", "API_KEY = 'abcdefghijklmnop1234'\n", "token/secret assignment", 1),
    ],
)
def test_content_patterns_name_file_line_and_kind(
    tmp_path: Path, name: str, content: str, kind: str, line: int
) -> None:
    (tmp_path / name).write_text(content)
    found = secrets.scan_tree(tmp_path)
    assert [(f.path, f.line, f.kind) for f in found] == [(name, line, kind)]


@pytest.mark.parametrize(
    "name", ["kaggle.json", ".env", ".env.production", "server.pem", "id_ed25519", ".netrc", "tls.key"]
)
def test_credential_file_names_fail_whatever_their_content(tmp_path: Path, name: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / name).write_text("harmless\n")
    found = secrets.scan_tree(tmp_path)
    assert len(found) == 1 and str(found[0]).startswith(f"sub/{name} (") and found[0].line == 0


def test_harmless_text_and_the_real_project_are_clean(tmp_path: Path, repo: Path) -> None:
    (tmp_path / "ok.yaml").write_text("token: null\npassword: ???\nkey: value\n.env.example: 1\n")
    (tmp_path / ".env.example").write_text("KAGGLE_KEY=\n")
    assert secrets.scan_tree(tmp_path) == []
    assert secrets.scan_tree(repo / "configs") == []
    assert secrets.scan_tree(repo / "src") == []


def test_wheel_members_are_scanned(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / "p-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("p/__init__.py", "x = 1\n")
        zf.writestr("p/settings.py", f"\nKAGGLE_KEY = '{KAGGLE_HEX}'\n")
        zf.writestr("p/.env", "A=1\n")
    assert secrets.scan_tree(tmp_path) == []  # third-party wheels are not opened
    found = [str(f) for f in secrets.scan_tree(tmp_path, wheels_to_open=["wheels/p-1.0-py3-none-any.whl"])]
    assert found == [
        "wheels/p-1.0-py3-none-any.whl!p/.env (dotenv file)",
        "wheels/p-1.0-py3-none-any.whl!p/settings.py:2 (Kaggle key assignment)",
    ]


def test_require_clean_message_never_contains_the_secret(tmp_path: Path) -> None:
    (tmp_path / "a.cfg").write_text(f"KAGGLE_KEY={KAGGLE_HEX}\nAWS={AWS_ID}\n")
    with pytest.raises(VerificationError) as info:
        secrets.require_clean(tmp_path)
    text = str(info.value)
    assert "a.cfg:1 (Kaggle key assignment)" in text and "a.cfg:2 (AWS access key id)" in text
    assert KAGGLE_HEX not in text and AWS_ID not in text


def test_build_fails_with_file_and_line_and_prints_no_secret(
    tiny: TinyProject, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = {
        "configs/kaggle.json": ('{"username": "me", "key": "' + KAGGLE_HEX + '"}', "configs/kaggle.json ("),
        "weights/.env": (f"KAGGLE_KEY={KAGGLE_HEX}\n", "weights/.env ("),
        "configs/env/extra.yaml": (f"a: 1\naws: {AWS_ID}\n", "configs/env/extra.yaml:2 (AWS access key id)"),
        "src/spectramind/leak.py": (
            f"\n\nTOKEN = '{GH_TOKEN}'\n",
            "site/lib/spectramind/leak.py:3 (GitHub token)",
        ),
    }
    for relpath, (content, _) in planted.items():
        (tiny.root / relpath).write_text(content)
    out = tiny.root / "dist" / "bundle"
    code, data, err = run_cli(tiny.args(out), capsys)
    assert code == 3
    for _, expected in planted.values():
        assert expected in data["where"]
    assert (
        "6 credential-looking item(s)" in data["what"]
    )  # names + lines and "contents not shown" in data["what"]
    for value in (KAGGLE_HEX, AWS_ID, GH_TOKEN):
        assert value not in err and value not in str(data)
    assert not out.exists()


ENCODINGS = {
    "utf-8": lambda t: t.encode("utf-8"),
    "utf-8 with BOM": lambda t: t.encode("utf-8-sig"),
    "utf-16 LE with BOM": lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"),
    "utf-16 BE with BOM": lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"),
    "utf-16 LE without BOM": lambda t: t.encode("utf-16-le"),
    "utf-16 BE without BOM": lambda t: t.encode("utf-16-be"),
    "utf-32 LE with BOM": lambda t: t.encode("utf-32"),  # what PowerShell's -Encoding UTF32 writes
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_secrets_in_utf16_and_bom_text_are_found(tmp_path: Path, encoding: str) -> None:
    """The scan read only UTF-8: a key saved by Notepad/PowerShell as UTF-16 slipped through."""
    (tmp_path / "notes.txt").write_bytes(ENCODINGS[encoding](f"hello\r\nKAGGLE_KEY={KAGGLE_HEX}\r\n"))
    (tmp_path / "ok.txt").write_bytes(ENCODINGS[encoding]("nothing to see here\n" * 50))
    found = secrets.scan_tree(tmp_path)
    assert [(f.path, f.line, f.kind) for f in found] == [("notes.txt", 2, "Kaggle key assignment")]


def test_binary_data_is_not_read_as_text(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 64 + f"KAGGLE_KEY={KAGGLE_HEX}".encode()  # NULs everywhere: binary
    (tmp_path / "weights.bin").write_bytes(blob)
    assert secrets.decode_text(blob) is None
    assert secrets.scan_tree(tmp_path) == []
