"""Credential scan of everything a bundle would ship: file names and file contents.

Findings name the file, the line and the kind of credential, never the matched text: the point of
the scan is that a secret is not copied anywhere, including into a CI log.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bundler.errors import VerificationError

# File names that hold credentials whatever their content.
_SECRET_NAMES: dict[str, str] = {
    "kaggle.json": "Kaggle API credentials file",
    ".env": "dotenv file",
    ".netrc": "netrc credentials file",
    ".pypirc": "PyPI credentials file",
    ".git-credentials": "git credentials file",
    "credentials": "cloud credentials file",
    "id_rsa": "SSH private key",
    "id_ecdsa": "SSH private key",
    "id_ed25519": "SSH private key",
    "id_dsa": "SSH private key",
}
_SECRET_SUFFIXES: dict[str, str] = {
    ".pem": "PEM key/certificate file",
    ".key": "private key file",
    ".p12": "PKCS#12 key store",
    ".pfx": "PKCS#12 key store",
}
# (kind, pattern) over each line of text content.
_SECRET_LINES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    (
        "Kaggle key assignment",
        re.compile(r"(?i)\bKAGGLE_(?:KEY|API_TOKEN)\b\s*[=:]\s*['\"]?[A-Za-z0-9_\-]{8,}"),
    ),
    ("Kaggle API token", re.compile(r"\bKGAT_[A-Za-z0-9]{16,}")),
    ("kaggle.json key", re.compile(r"\"key\"\s*:\s*\"[0-9a-f]{32}\"")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret key", re.compile(r"(?i)\baws_secret_access_key\b\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    (
        "token/secret assignment",
        re.compile(
            r"(?i)\b[A-Za-z_]*(?:api[_-]?key|api[_-]?token|access[_-]?token|secret[_-]?key|client[_-]?secret|password)"
            r"\b\s*[=:]\s*['\"]?[A-Za-z0-9_\-+/=]{16,}"
        ),
    ),
)
_TEXT_LIMIT = 8 * 1024**2  # larger files are data (weights): only their names are checked


@dataclass(frozen=True)
class Finding:
    """One credential-looking thing: where it is and what kind; never the value."""

    path: str
    line: int  # 0 when the file name alone is the finding
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.kind})" if self.line else f"{self.path} ({self.kind})"


def name_finding(path: str) -> Finding | None:
    name = PurePosixPath(path).name
    lower = name.lower()
    if lower in _SECRET_NAMES:
        return Finding(path, 0, _SECRET_NAMES[lower])
    if lower.startswith(".env.") and lower not in {".env.example", ".env.sample", ".env.template"}:
        return Finding(path, 0, "dotenv file")
    for suffix, kind in _SECRET_SUFFIXES.items():
        if lower.endswith(suffix):
            return Finding(path, 0, kind)
    return None


def scan_text(text: str, path: str) -> list[Finding]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in _SECRET_LINES:
            if pattern.search(line):
                found.append(Finding(path, number, kind))
                break
    return found


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 told by its NULs: mostly-ASCII text has a NUL in every high byte, and nowhere else."""
    even, odd = head[0::2], head[1::2]
    if not even or not odd:
        return None
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul > 0.3 and even_nul < 0.05:
        return "utf-16-le"
    if even_nul > 0.3 and odd_nul < 0.05:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> str | None:
    """Text as people's tools write it: UTF-8 (with or without BOM), UTF-16/32 with a BOM, UTF-16
    without one (told by its NUL pattern); None for binary data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace")
    head = data[:8192]
    if b"\0" not in head:
        return data.decode("utf-8", "replace")
    utf16 = _utf16_without_bom(head[: len(head) - len(head) % 2])
    return data.decode(utf16, "replace") if utf16 else None


def scan_bytes(data: bytes, path: str) -> list[Finding]:
    text = decode_text(data)
    return [] if text is None else scan_text(text, path)


def scan_file(path: Path, rel: str) -> list[Finding]:
    found = [f for f in [name_finding(rel)] if f]
    if path.suffix == ".whl":
        return found  # wheels are scanned member by member with scan_wheel when they are ours
    if path.stat().st_size <= _TEXT_LIMIT:
        found += scan_bytes(path.read_bytes(), rel)
    return found


def scan_wheel(path: Path, rel: str) -> list[Finding]:
    """Scan the members of a wheel we built (the project's): names and text content."""
    found: list[Finding] = []
    with zipfile.ZipFile(path) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            member = f"{rel}!{info.filename}"
            if (hit := name_finding(info.filename)) is not None:
                found.append(Finding(member, 0, hit.kind))
            if not info.is_dir() and info.file_size <= _TEXT_LIMIT:
                found += scan_bytes(zf.read(info), member)
    return found


def scan_tree(
    root: Path, *, wheels_to_open: Iterable[str] = (), skip: Callable[[str], bool] = lambda _rel: False
) -> list[Finding]:
    """Every finding under ``root`` (paths relative to it), sorted; ``wheels_to_open`` are scanned inside.

    ``skip``: paths not scanned at all (third-party files installed from hash-locked wheels).
    """
    opened = set(wheels_to_open)
    found: list[Finding] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if skip(rel):
            continue
        found += scan_file(path, rel)
        if rel in opened:
            found += scan_wheel(path, rel)
    return found


def require_clean(
    root: Path, *, wheels_to_open: Iterable[str] = (), skip: Callable[[str], bool] = lambda _rel: False
) -> None:
    """Fail the build (exit 3) when anything under ``root`` looks like a credential."""
    found = scan_tree(root, wheels_to_open=wheels_to_open, skip=skip)
    if found:
        shown = "; ".join(str(f) for f in found[:20]) + (
            f"; and {len(found) - 20} more" if len(found) > 20 else ""
        )
        raise VerificationError(
            f"{len(found)} credential-looking item(s) would be packed into the bundle (contents not shown)",
            where=shown,
            fix="remove the file or the line from what is packed (configs/, weights/, src/); keep "
            "credentials in ~/.kaggle or CI secrets, never in the project",
        )
