"""Bundle verification in two parts, so that its cost does not grow with the delta on the critical path.

- `check_bundle` (before anything from the bundle runs): MANIFEST.json is self-consistent (its
  ``bundle_sha256`` covers files and metadata), every listed file exists with its size and nothing
  else is there, and every small file (boot, configs, lock, metadata) is hashed.
- `Verifier` (beside the run, at low priority): the content hashes of ``site/`` and ``weights/``.
  Boot stops the command when it finds a mismatch (``boot.verify=overlap``), or runs it to the end
  before anything runs (``boot.verify=strict``).

`verify_bundle` does both at once (``python -m bundler verify``, ``spectramind test``, push).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import BootError
from .manifest import MANIFEST_NAME, MANIFEST_SCHEMA, bundle_sha256, file_sha256, metadata, read_manifest

# Hashed beside the run: the installed delta and the weights are where the bytes are.
DEFERRED = ("site/", "weights/")


class VerifyReport:
    """What differs between a bundle directory and its MANIFEST.json."""

    def __init__(self) -> None:
        self.bundle_sha256 = ""
        self.files = self.bytes = self.hashed_bytes = 0
        self.modified: list[str] = []
        self.missing: list[str] = []
        self.extra: list[str] = []
        self.errors: list[str] = []
        self.deferred: list[dict[str, Any]] = []  # entries left for the Verifier

    @property
    def ok(self) -> bool:
        return not (self.modified or self.missing or self.extra or self.errors)

    def problems(self) -> list[str]:
        named = [f"modified: {p}" for p in self.modified] + [f"missing: {p}" for p in self.missing]
        return named + [f"extra: {p}" for p in self.extra] + self.errors


def scan(root: Path) -> dict[str, int]:
    """Relative POSIX path -> size of every file under ``root`` (MANIFEST.json left out).

    A symlink is reported with size -1: a bundle never holds one, so it can never match. Plain
    strings and one ``stat`` per file: this runs on boot's critical path over every file of site/.
    """
    found: dict[str, int] = {}
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_symlink():
                    found[prefix + entry.name] = -1
                elif entry.is_dir():
                    stack.append((entry.path, prefix + entry.name + "/"))
                else:
                    found[prefix + entry.name] = entry.stat().st_size
    found.pop(MANIFEST_NAME, None)
    return found


def check_bundle(root: Path, manifest: dict[str, Any] | None = None, *, defer: bool = True) -> VerifyReport:
    """The critical-path check (see module doc); with ``defer=False`` every file is hashed here."""
    report = VerifyReport()
    try:
        manifest = read_manifest(root) if manifest is None else manifest
        listed = {str(e["path"]): e for e in manifest["files"]}
        report.bundle_sha256 = str(manifest.get("bundle_sha256", ""))
    except FileNotFoundError:
        report.errors.append(f"{MANIFEST_NAME} is missing")
        return report
    except (ValueError, KeyError, TypeError) as exc:
        report.errors.append(f"{MANIFEST_NAME} is unreadable: {exc}")
        return report
    if manifest.get("schema") != MANIFEST_SCHEMA:
        report.errors.append(
            f"{MANIFEST_NAME} has schema {manifest.get('schema')!r}; this boot reads schema {MANIFEST_SCHEMA}"
        )
        return report
    if bundle_sha256(list(listed.values()), metadata(manifest)) != report.bundle_sha256:
        report.errors.append(f"bundle_sha256 does not match the files and metadata in {MANIFEST_NAME}")
    present = scan(root)
    report.missing = sorted(listed.keys() - present.keys())
    report.extra = sorted(present.keys() - listed.keys())
    common = listed.keys() & present.keys()
    report.files = len(common)
    report.bytes = sum(max(present[rel], 0) for rel in common)
    report.modified = [rel for rel in common if present[rel] != listed[rel]["size"]]
    same_size = [listed[rel] for rel in common if present[rel] == listed[rel]["size"]]
    report.deferred = [e for e in same_size if defer and str(e["path"]).startswith(DEFERRED)]
    for entry in same_size:
        if defer and str(entry["path"]).startswith(DEFERRED):
            continue
        report.hashed_bytes += int(entry["size"])
        if file_sha256(root / str(entry["path"])) != entry["sha256"]:
            report.modified.append(str(entry["path"]))
    report.modified.sort()
    return report


def verify_bundle(root: Path) -> VerifyReport:
    """Every check and every hash, in this thread."""
    return check_bundle(root, defer=False)


class Verifier:
    """Hashes the deferred entries: in one background thread at low CPU priority (beside the run), or
    on every core at once before anything runs (``strict``; sha256 releases the GIL).

    ``on_failure(path)`` is called once, from a hashing thread, at the first mismatch; hashing goes on
    so that the record names every modified file.
    """

    def __init__(self, root: Path, entries: list[dict[str, Any]], on_failure: Callable[[str], None]) -> None:
        self.root, self.entries, self.on_failure = root, entries, on_failure
        self.modified: list[str] = []
        self.bytes = 0
        self.seconds = 0.0
        self.finished_at: float | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()

    def start(self, *, background: bool = True) -> Verifier:
        if background:
            threading.Thread(target=self._run, args=(1, True), name="boot-verify", daemon=True).start()
        else:
            self._run(max(2, os.cpu_count() or 1), False)
        return self

    @property
    def ok(self) -> bool:
        return self.done.is_set() and not self.modified

    def wait(self) -> bool:
        self.done.wait()
        return not self.modified

    def _run(self, workers: int, nice: bool) -> None:
        started = time.perf_counter()
        # biggest first, dealt round-robin: the threads finish together
        ordered = sorted(self.entries, key=lambda e: -int(e["size"]))
        shares = [ordered[k::workers] for k in range(workers)]
        threads = [
            threading.Thread(target=self._hash, args=(share, nice), daemon=True) for share in shares[1:]
        ]
        try:
            for thread in threads:
                thread.start()
            self._hash(shares[0], nice)
            for thread in threads:
                thread.join()
        finally:
            self.modified.sort()
            self.seconds = round(time.perf_counter() - started, 4)
            self.finished_at = time.time()
            self.done.set()

    def _hash(self, entries: list[dict[str, Any]], nice: bool) -> None:
        if nice:  # Linux niceness is per thread: the command keeps the CPU, hashing takes what is left
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        for entry in entries:
            path = str(entry["path"])
            try:
                good = file_sha256(self.root / path) == entry["sha256"]
            except OSError:
                good = False
            with self._lock:
                self.bytes += int(entry["size"])
                if not good:
                    self.modified.append(path)
                    if len(self.modified) == 1:
                        self.on_failure(path)


VERIFY_MODES = ("overlap", "strict")


def verify_mode(command: list[str]) -> str:
    """``boot.verify=`` from the command, else SPECTRAMIND_VERIFY, else overlap."""
    mode = os.environ.get("SPECTRAMIND_VERIFY", "").strip() or "overlap"
    for arg in command:
        m = re.match(r"^\+{0,2}boot\.verify=(.*)$", arg)
        if m:
            mode = m.group(1)
    if mode not in VERIFY_MODES:
        raise BootError(
            f"boot.verify={mode!r} is not one of {', '.join(VERIFY_MODES)}",
            where="command overrides / SPECTRAMIND_VERIFY",
            fix="use boot.verify=overlap (hash site/ and weights/ beside the run) or boot.verify=strict",
        )
    return mode
