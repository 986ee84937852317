"""``python -m bundler probe --from-freeze FILE``: an image manifest from a ``pip freeze`` list.

What ``!pip freeze > freeze.txt`` in a Kaggle notebook gives (or Kaggle's published package list)
names every distribution and its version, nothing more. The rest is learnt or assumed:

- ``Requires-Dist`` of each distribution comes from the package index: the PEP 658 ``.metadata``
  file of one of the version's wheels, else the wheel itself. Every metadata file is cached
  content-addressed (``<cache>/sha256/...``) with a pointer per (index, name, version, target) in
  ``<cache>/choices/``, so ``--offline`` rebuilds the manifest from the cache with no request.
- Entries the index cannot describe (local versions such as ``+cpu``, ``0.0.0`` system packages,
  private or removed packages, URL installs) are kept with their version and
  ``"requires_unknown": true`` (with the reason), never dropped.
- Python ABI, platform tags and glibc are *assumed* from ``--python`` and ``--glibc`` (CPython on
  x86_64); the manifest's ``assumed`` block says so, and ``source`` records the list's sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bundler import config, probe
from bundler.clobber import metadata_requires, wheel_metadata
from bundler.errors import BundlerError, UsageError
from bundler.fetch import Cache, IndexClient, IndexFile, IndexHTTPError, safe_url, verify_download
from bundler.output import Result, console
from bundler.tags import parse_filename
from spectramind.shim import atomic_write

WORKERS = 8  # concurrent index requests (PyPI is fine with a handful; a proxy may not be with more)
MACHINE = "x86_64"  # Kaggle's images
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_PIN = re.compile(r"^(?P<name>[^=<>!~ @\[]+)\s*===?\s*(?P<version>\S+)$")
_URL = re.compile(r"^(?P<name>[^=<>!~ @\[]+)(?:\[[^\]]*\])?\s*@\s*(?P<url>\S+)$")


@dataclass(frozen=True)
class FreezeEntry:
    """One distribution of the list: ``version`` from ``==`` or from a URL's file name."""

    name: str
    version: str
    line: int
    url: str | None = None  # ``name @ url`` installs: their Requires-Dist is unknown


@dataclass(frozen=True)
class FreezeList:
    entries: tuple[FreezeEntry, ...]
    notes: tuple[str, ...]  # lines skipped on purpose (editable installs), with their line numbers


def parse_freeze(text: str, where: str) -> FreezeList:
    """Parse ``pip freeze`` / ``uv pip freeze`` output; a line of another form is a clear error."""
    entries: dict[str, FreezeEntry] = {}
    notes: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "--editable")):
            notes.append(f"line {number}: editable install skipped (not part of the image): {line}")
            continue
        entry = _entry(line, number)
        if entry is None:
            raise UsageError(
                f"not a pip freeze line: {line!r}",
                where=f"{where}:{number}",
                fix="pass the output of `pip freeze` (lines `name==version` or `name @ URL`)",
            )
        key = str(canonicalize_name(entry.name))
        if key in entries and entries[key].version != entry.version:
            raise UsageError(
                f"{entry.name} is listed twice ({entries[key].version} at line {entries[key].line} "
                f"and {entry.version})",
                where=f"{where}:{number}",
                fix="keep the version the image really has (one `pip freeze` of one environment)",
            )
        entries[key] = entry
    if not entries:
        raise UsageError(
            "the freeze list names no distribution",
            where=where,
            fix="run `pip freeze > freeze.txt` inside the image and pass that file",
        )
    return FreezeList(tuple(entries[k] for k in sorted(entries)), tuple(notes))


def _entry(line: str, number: int) -> FreezeEntry | None:
    pin = _PIN.match(line)
    if pin and _NAME.match(pin["name"]):
        return FreezeEntry(pin["name"], pin["version"], number)
    url = _URL.match(line)
    if url and _NAME.match(url["name"]):
        parsed = parse_filename(url["url"].rsplit("/", 1)[-1].split("#")[0])
        version = str(parsed.version) if parsed is not None else "unknown"
        return FreezeEntry(url["name"], version, number, url=url["url"])
    return None


def unknown_reason(entry: FreezeEntry) -> str | None:
    """Why the index cannot describe ``entry`` before asking it; None when it may."""
    if entry.url is not None:
        return f"installed from a URL ({entry.url}), not from the index"
    try:
        version = Version(entry.version)
    except InvalidVersion:
        return f"'{entry.version}' is not a PEP 440 version"
    if version.local is not None:
        return f"local version label +{version.local}: a build the public index does not publish"
    if version == Version("0"):
        return "version 0.0.0: a system (apt) package, not from the index"
    return None


@dataclass(frozen=True)
class Target:
    """The image facts assumed from --python and --glibc (CPython on x86_64)."""

    python: str  # "3.12" or "3.12.4"
    glibc: tuple[int, int]

    @property
    def abi(self) -> str:
        major, minor = Version(self.python).release[:2]
        return f"cp{major}{minor}"

    def platforms(self) -> list[str]:
        return probe.platform_tags(self.glibc, MACHINE)

    def tags(self) -> list[str]:
        major, minor = Version(self.python).release[:2]
        plats = self.platforms()
        found = [*cpython_tags((major, minor), abis=[self.abi], platforms=plats)]
        found += compatible_tags((major, minor), f"cp{major}{minor}", plats)
        return [str(t) for t in found]


def pick_wheel(entry: FreezeEntry, files: list[IndexFile], ranks: dict[str, int]) -> IndexFile | None:
    """The version's wheel to learn Requires-Dist from: with a .metadata file first, then the
    target's best tags (markers make metadata the same across a version's wheels, almost always)."""
    want = Version(entry.version)
    found: list[tuple[bool, int, str, IndexFile]] = []
    for f in files:
        parsed = parse_filename(f.filename)
        if parsed is None or parsed.kind != "wheel" or parsed.version != want:
            continue
        rank = min((ranks.get(str(t), len(ranks)) for t in parsed.tags), default=len(ranks))
        found.append((not f.has_metadata, rank, f.filename, f))
    return min(found, key=lambda x: x[:3])[3] if found else None


class Describer:
    """Requires-Dist of each entry from the index, through the cache (``offline``: cache only)."""

    def __init__(self, index_url: str, cache: Cache, target: Target, *, offline: bool) -> None:
        self.client = IndexClient(index_url, offline=offline)
        self.cache = cache
        self.index = safe_url(index_url)
        self.tags = target.tags()
        self.ranks = {t: i for i, t in enumerate(self.tags)}
        self.offline = offline

    def _key(self, entry: FreezeEntry) -> str:
        blob = {"v": 1, "kind": "requires-dist", "index": self.index, "tags": self.tags[0]}
        blob |= {"name": str(canonicalize_name(entry.name)), "version": entry.version}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    def cached(self, entry: FreezeEntry) -> dict[str, Any] | None:
        """The remembered answer for ``entry`` (requires or unknown reason), or None."""
        choice = self.cache.load_choice(self._key(entry))
        if not choice:
            return None
        if "unknown" in choice:
            return {"unknown": choice["unknown"]}
        meta = self.cache.get(choice["sha256"], choice["filename"])
        if meta is None:
            return None
        return {"requires": metadata_requires(meta.read_text(encoding="utf-8", errors="replace"))}

    def describe(self, entry: FreezeEntry) -> dict[str, Any]:
        """``{"requires": (...)}`` or ``{"unknown": reason}`` for one entry, from the index."""
        found = self.cached(entry)
        if found is not None:
            return found
        name = str(canonicalize_name(entry.name))
        try:
            files = self.client.project_files(name)
        except IndexHTTPError as exc:
            if exc.code not in (404, 410):
                raise
            return self._remember(entry, {"unknown": "not on the index (a private or removed package)"})
        wheel = pick_wheel(entry, files, self.ranks)
        if wheel is None:
            want = Version(entry.version)
            listed = any((p := parse_filename(f.filename)) is not None and p.version == want for f in files)
            reason = (
                f"only an sdist of {entry.version} on the index (its Requires-Dist needs a build)"
                if listed
                else f"version {entry.version} is not on the index"
            )
            return self._remember(entry, {"unknown": reason})
        return self._remember(entry, self._fetch(entry, wheel))

    def _fetch(self, entry: FreezeEntry, wheel: IndexFile) -> dict[str, Any]:
        where = f"{self.index} ({entry.name}=={entry.version})"
        url, want = (
            (f"{wheel.url}.metadata", wheel.metadata_sha256)
            if wheel.has_metadata
            else (wheel.url, wheel.sha256)
        )
        tmp, digest, _ = self.client.download(url, self.cache.incoming())
        if want is not None and digest != want:
            tmp.unlink(missing_ok=True)
            verify_download(url.rsplit("/", 1)[-1], digest, (want,), url, where)
        if wheel.has_metadata:
            meta = self.cache.put(tmp, digest, f"{wheel.filename}.metadata")
        else:  # no PEP 658 file: the wheel itself (kept in the cache), its METADATA stored beside
            data = wheel_metadata(self.cache.put(tmp, digest, wheel.filename)).encode()
            digest = hashlib.sha256(data).hexdigest()
            meta = self.cache.blob_path(digest, f"{wheel.filename}.metadata")
            atomic_write(meta, data)
        text = meta.read_text(encoding="utf-8", errors="replace")
        return {"requires": metadata_requires(text), "filename": meta.name, "sha256": digest}

    def _remember(self, entry: FreezeEntry, answer: dict[str, Any]) -> dict[str, Any]:
        self.cache.save_choice(self._key(entry), answer)
        return answer


def describe_all(freeze: FreezeList, describer: Describer, workers: int = WORKERS) -> list[dict[str, Any]]:
    """The manifest's ``distributions``: every entry, described in parallel (bounded)."""
    todo = [e for e in freeze.entries if unknown_reason(e) is None]
    if describer.offline:
        missing = [f"{e.name}=={e.version}" for e in todo if describer.cached(e) is None]
        if missing:
            raise BundlerError(
                f"--offline: {len(missing)} distribution(s) not described in the cache: "
                + ", ".join(missing[:10])
                + (" …" if len(missing) > 10 else ""),
                where=str(describer.cache.root),
                fix="run the same command once without --offline to fill the cache",
            )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        answers = dict(zip(todo, pool.map(describer.describe, todo), strict=True))
    out: list[dict[str, Any]] = []
    for entry in freeze.entries:
        reason = unknown_reason(entry)
        answer = answers.get(entry) or {"unknown": reason}
        item: dict[str, Any] = {"name": entry.name, "version": entry.version}
        if "unknown" in answer:
            item |= {"requires_dist": [], "requires_unknown": True, "reason": answer["unknown"]}
        else:
            item["requires_dist"] = list(answer["requires"])
        out.append(item)
    return out


def manifest(
    *, name: str, source: Path, raw: bytes, target: Target, dists: list[dict[str, Any]], index_url: str,
    notes: tuple[str, ...], docker_image: str | None, note: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The image manifest (schema of bundler/image.py) with its provenance and assumptions."""
    torch = next((d for d in dists if canonicalize_name(d["name"]) == "torch"), None)
    data: dict[str, Any] = {
        "schema": probe.SCHEMA,
        "name": name,
        "note": note or f"derived from a freeze list ({source.name}) with `bundler probe --from-freeze`",
        "created": probe._created(),
        "source": {
            "kind": "derived from a freeze list",
            "file": source.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "index_url": safe_url(index_url),
            "skipped_lines": list(notes),
        },
        "assumed": {
            "python.abi": f"{target.abi}: CPython assumed from --python {target.python}",
            "platform.glibc": f"{target.glibc[0]}.{target.glibc[1]} from --glibc (not in a freeze list)",
            "platform.platforms": f"manylinux tags for glibc <= --glibc on {MACHINE}",
            "platform.tags": f"CPython {target.abi} tags on those platforms",
            "cuda": "only torch's local version label and the nvidia-* distributions of the list",
            "tools": "unknown: a freeze list does not say what is on PATH (uv, nvidia-smi)",
        },
        "python": {"version": target.python, "implementation": "cpython", "abi": target.abi},
        "platform": {
            "system": "Linux",
            "machine": MACHINE,
            "glibc": f"{target.glibc[0]}.{target.glibc[1]}",
            "platforms": target.platforms(),
            "tags": target.tags(),
        },
        "cuda": {
            "driver": None,
            "runtime": None,
            "torch_cuda": probe.torch_cuda_from_version(torch["version"]) if torch else None,
            "driver_version": None,
            "gpus": [],
            "packages": probe.cuda_packages(dists),
        },
        "tools": None,
        "distributions": dists,
    }
    if docker_image:
        data["kaggle"] = {"docker_image": docker_image}
    return data


def _target(args: argparse.Namespace) -> Target:
    python, glibc = args.python, args.glibc
    if not python or not glibc:
        raise UsageError(
            "--from-freeze needs --python X.Y[.Z] and --glibc A.B (a freeze list says neither)",
            where="python -m bundler probe",
            fix="e.g. --python 3.12 --glibc 2.35 (the image's Python and C library)",
        )
    if not re.fullmatch(r"3\.\d+(\.\d+)?", python) or not re.fullmatch(r"2\.\d+", glibc):
        raise UsageError(
            f"--python {python} / --glibc {glibc} are not versions of the form 3.12[.4] / 2.35",
            where="python -m bundler probe",
            fix="pass --python 3.12 --glibc 2.35",
        )
    return Target(python, (2, int(glibc.split(".")[1])))


def run(args: argparse.Namespace) -> Result:
    """``probe --from-freeze``: read the list, describe it from the index, write the manifest."""
    target = _target(args)
    source = Path(args.from_freeze)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the freeze list: {exc.strerror}",
            where=str(source),
            fix="pass the file `pip freeze > freeze.txt` wrote",
        ) from exc
    freeze = parse_freeze(raw.decode("utf-8", "replace"), str(source))
    settings = config.load(list(args.overrides or []), args.config_dir)
    cache = Cache(settings.path(settings.bundle.cache_dir))
    describer = Describer(settings.bundle.index_url, cache, target, offline=bool(args.offline))
    console.print(f"probe: describing {len(freeze.entries)} distributions from {describer.index}")
    dists = describe_all(freeze, describer)
    name = args.name or (Path(args.out).stem if args.out else source.stem)
    out = Path(args.out) if args.out else settings.config_dir / "images" / f"{name}.json"
    data = manifest(
        name=name, source=source, raw=raw, target=target, dists=dists, index_url=settings.bundle.index_url,
        notes=freeze.notes, docker_image=args.docker_image, note=args.note,
    )  # fmt: skip
    atomic_write(out, (json.dumps(data, indent=2) + "\n").encode())
    unknown = [f"{d['name']}=={d['version']} ({d['reason']})" for d in dists if d.get("requires_unknown")]
    return Result(
        command="probe",
        data={
            "out": str(out),
            "name": name,
            "source_sha256": data["source"]["sha256"],
            "distributions": len(dists),
            "requires_unknown": [
                {"name": d["name"], "version": d["version"], "reason": d["reason"]}
                for d in dists
                if d.get("requires_unknown")
            ],
            "skipped_lines": list(freeze.notes),
            "network_requests": describer.client.requests,
        },
        title="image manifest derived from a freeze list",
        rows=[
            ("manifest", str(out)),
            ("distributions", str(len(dists))),
            ("requires unknown", str(len(unknown))),
            ("index requests", str(describer.client.requests)),
        ],
        messages=[f"requires unknown: {u}" for u in unknown] + list(freeze.notes),
    )
