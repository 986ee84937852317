"""Read pip-tools lock files (``requirements.lock``) and their ``# spectramind-lock:`` header.

Format (what ``pip-compile --generate-hashes`` and ``uv pip compile --generate-hashes`` write)::

    # spectramind-lock: requirements-in-sha256=<hex> target=<name> image=<name> image-sha256=<hex>
    --index-url https://pypi.org/simple
    numpy==2.1.3 \\
        --hash=sha256:<hex> \\
        --hash=sha256:<hex>
        # via -r requirements.in
    tomli==2.0.1 ; python_version < "3.11" \\
        --hash=sha256:<hex>

Every pin is ``name==version`` with at least one sha256 hash. Errors name ``file:line`` and the fix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler.errors import BundlerError

HEADER_PREFIX = "# spectramind-lock:"
RELOCK = "re-lock with `python -m bundler lock`"

_HASH = re.compile(r"--hash[=\s]+(?P<algo>[A-Za-z0-9]+):(?P<hex>[0-9A-Fa-f]+)")
_COMMENT = re.compile(r"(^|\s+)#.*$")
# Options pip accepts on their own line in a requirements file; they do not name packages.
_GLOBAL_OPTIONS = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--pre",
    "--no-index",
)


@dataclass(frozen=True)
class LockedPin:
    """One ``name==version`` pin: canonical name, exact version, allowed sha256 hashes, marker."""

    name: str
    version: str
    hashes: tuple[str, ...]
    markers: str | None
    line: int  # 1-based line of the pin in the lock file
    extras: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class LockHeader:
    """The ``# spectramind-lock:`` comment written by ``python -m bundler lock``."""

    requirements_in_sha256: str
    target: str
    image: str
    image_sha256: str
    line: int
    extra: str | None = None  # set in an extra's lock: the extra it holds
    base_lock_sha256: str | None = None  # in an extra's lock: the sha256 of the lock it extends


@dataclass(frozen=True)
class Lock:
    path: Path
    sha256: str
    header: LockHeader | None
    pins: tuple[LockedPin, ...]
    options: tuple[str, ...] = field(default=())


def _malformed(path: Path, line: int, what: str, fix: str) -> BundlerError:
    return BundlerError(f"malformed lock line: {what}", where=f"{path}:{line}", fix=fix)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; comment-only lines end a continuation. Returns (first line, text)."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            if buf:
                out.append((start, " ".join(buf)))
                buf = []
            out.append((number, stripped))
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        out.append((start, " ".join(buf)))
        buf = []
    if buf:
        out.append((start, " ".join(buf)))
    return out


def parse_header(line: str, number: int, path: Path) -> LockHeader:
    fields = dict(item.split("=", 1) for item in line.removeprefix(HEADER_PREFIX).split() if "=" in item)
    needed = ("requirements-in-sha256", "target", "image", "image-sha256")
    missing = [k for k in needed if not fields.get(k)]
    if missing:
        raise _malformed(path, number, f"lock header lacks {', '.join(missing)}", RELOCK)
    return LockHeader(
        requirements_in_sha256=fields["requirements-in-sha256"].lower(),
        target=fields["target"],
        image=fields["image"],
        image_sha256=fields["image-sha256"].lower(),
        line=number,
        extra=fields.get("extra"),
        base_lock_sha256=fields["base-lock-sha256"].lower() if fields.get("base-lock-sha256") else None,
    )


def _parse_pin(text: str, number: int, path: Path) -> LockedPin:
    req_text, _, _ = text.partition(" --")
    options = text[len(req_text) :]
    leftover = _HASH.sub("", options).strip()
    if leftover:
        raise _malformed(path, number, f"unexpected option {leftover.split()[0]!r}", RELOCK)
    try:
        req = Requirement(req_text.strip())
    except InvalidRequirement as exc:
        raise _malformed(path, number, f"{req_text.strip()!r} is not a requirement ({exc})", RELOCK) from exc
    specs = list(req.specifier)
    if req.url or len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        raise _malformed(
            path,
            number,
            f"{req_text.strip()!r} is not pinned to one exact version (name==version)",
            f"{RELOCK}; URLs, ranges and editable requirements cannot be bundled",
        )
    hashes = tuple(
        sorted({m["hex"].lower() for m in _HASH.finditer(options) if m["algo"].lower() == "sha256"})
    )
    if not hashes or any(len(h) != 64 for h in hashes):
        raise BundlerError(
            f"pin without hash: {req.name}=={specs[0].version} has no sha256 --hash",
            where=f"{path}:{number}",
            fix=f"{RELOCK} (it runs with --generate-hashes); every file is verified against the lock",
        )
    return LockedPin(
        name=str(canonicalize_name(req.name)),
        version=specs[0].version,
        hashes=hashes,
        markers=str(req.marker) if req.marker else None,
        line=number,
        extras=tuple(sorted(req.extras)),
    )


def parse_lock(path: Path) -> Lock:
    """Parse a pip-tools lock with hashes; every problem names ``file:line`` and the fix."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise BundlerError(
            "lock file not found", where=str(path), fix=f"create it: {RELOCK} (or pass --lock PATH)"
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundlerError("lock file is not UTF-8 text", where=str(path), fix=RELOCK) from exc
    header: LockHeader | None = None
    pins: list[LockedPin] = []
    options: list[str] = []
    for number, line in _logical_lines(text):
        if not line:
            continue
        if line.startswith(HEADER_PREFIX):
            header = parse_header(line, number, path)
            continue
        content = _COMMENT.sub("", line).strip()
        if not content:
            continue
        if content.startswith("-"):
            flag = re.split(r"[=\s]", content, maxsplit=1)[0]
            if flag in _GLOBAL_OPTIONS:
                options.append(content)
                continue
            if flag == "--hash":
                raise _malformed(
                    path,
                    number,
                    "a --hash line that continues no pin",
                    f"end the pin's line above with a backslash, or {RELOCK}",
                )
            raise _malformed(
                path,
                number,
                f"option {flag!r} is not allowed in a lock",
                f"{RELOCK}; a lock holds only name==version pins with --hash lines",
            )
        pins.append(_parse_pin(content, number, path))
    return Lock(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        header=header,
        pins=tuple(pins),
        options=tuple(options),
    )


INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")  # the options requirements.in may use
_INCLUDE = re.compile(r"^\s*(?:" + "|".join(map(re.escape, INCLUDE_OPTIONS)) + r")(?:\s+|=)(\S+)")


def requirements_sha256(path: Path, _seen: tuple[Path, ...] = ()) -> str:
    """sha256 of a requirements file and of every file it includes (``-r``/``-c``, recursively).

    Without includes this is the plain sha256 of the file's bytes; with them, the file's bytes and
    each included file's name and hash, in order, so an edit to an included file dates the lock too.
    """
    if path.resolve() in _seen:
        raise BundlerError(
            "requirements files include each other in a loop",
            where=" -> ".join(str(p) for p in (*_seen, path.resolve())),
            fix="remove the -r/-c line that closes the loop",
        )
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        where = str(path) if not _seen else f"{path} (included from {_seen[-1]})"
        raise BundlerError(
            "requirements file not found",
            where=where,
            fix="create it or fix the -r/-c line / bundle.requirements_in",
        ) from exc
    includes = [
        m.group(1) for line in raw.decode("utf-8", "replace").splitlines() if (m := _INCLUDE.match(line))
    ]
    if not includes:
        return hashlib.sha256(raw).hexdigest()
    digest = hashlib.sha256(raw)
    for name in includes:
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update(requirements_sha256(path.parent / name, (*_seen, path.resolve())).encode())
    return digest.hexdigest()


def check_fresh(lock: Lock, requirements_in: Path, relock: str = RELOCK) -> None:
    """Fail with "lock out of date" when requirements.in changed since the lock was written."""
    if lock.header is None:
        raise BundlerError(
            f"lock has no '{HEADER_PREFIX}' header, so it cannot be checked against requirements.in",
            where=f"{lock.path}:1",
            fix=relock,
        )
    actual = requirements_sha256(requirements_in)
    if actual != lock.header.requirements_in_sha256:
        raise BundlerError(
            f"lock out of date: {requirements_in.name} changed since the lock was written (it or a file it "
            f"includes; sha256 {actual[:12]}… vs {lock.header.requirements_in_sha256[:12]}… in the lock)",
            where=f"{lock.path}:{lock.header.line}",
            fix=relock,
        )


def check_target(lock: Lock, target: str, image: str, image_sha256: str, relock: str = RELOCK) -> None:
    """Fail when the lock was resolved for another target or another capture of the image."""
    header = lock.header
    if header is None:
        raise BundlerError(f"lock has no '{HEADER_PREFIX}' header", where=f"{lock.path}:1", fix=relock)
    where = f"{lock.path}:{header.line}"
    if header.target != target or header.image != image:
        raise BundlerError(
            f"lock was resolved for target={header.target} image={header.image}, "
            f"but this build is for target={target} image={image}",
            where=where,
            fix=f"{relock} target={target}, or build with target={header.target}",
        )
    if header.image_sha256 != image_sha256:
        raise BundlerError(
            f"lock out of date: image manifest '{image}' changed since the lock was written",
            where=where,
            fix=relock,
        )


_PIN_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==")


def drop_pins(text: str, names: set[str]) -> str:
    """pip-tools text without the pins of ``names`` (each pin with its indented --hash/# via lines)."""
    out: list[str] = []
    dropping = False
    for line in text.splitlines(keepends=True):
        if not (line[:1].isspace() and line.strip()):  # a new pin, a comment or a blank line
            match = _PIN_NAME.match(line)
            dropping = match is not None and str(canonicalize_name(match.group(1))) in names
        if not dropping:
            out.append(line)
    return "".join(out)
