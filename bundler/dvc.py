"""The one adapter around DVC: make the bundle's weights present in the workspace.

Weights are tracked with ``dvc add`` (a ``<file>.dvc`` pointer in git, the data in a DVC remote).
The build asks DVC, through its command line, to pull what the workspace lacks, and reports what
it packs: ``tracked`` (workspace matches the pointer), ``pulled``, ``modified`` (workspace differs
from the pointer: packed, with a warning) or ``untracked`` (no pointer: packed, with a warning).
An entry with neither a pointer nor a weights file is an error, or ``missing`` (nothing packed,
with a warning) when the build allows missing weights.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from bundler.errors import BundlerError, UsageError

_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class WeightStatus:
    """One packed weights path and how it got into the workspace."""

    path: str  # relative to the project root
    state: str  # tracked | pulled | modified | untracked | missing
    dvc_file: str | None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"  # no usage report from inside builds and tests
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


def run_dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``dvc ARGS`` in ``root``; a failure raises a `BundlerError` quoting DVC's own error."""
    try:
        proc = subprocess.run(
            ["dvc", *args],
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BundlerError(
            "the dvc command is not installed",
            where="PATH",
            fix="install the dev dependencies (`pip install -e .[dev]`, which has dvc>=3.50)",
        ) from exc
    if check and proc.returncode != 0:
        raise BundlerError(
            f"`dvc {' '.join(args)}` failed: {_last_error(proc)}",
            where=str(root),
            fix="run the same command in the project to see DVC's full output",
        )
    return proc


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR")]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


def is_repo(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def pointer_files(path: Path) -> list[Path]:
    """The ``.dvc`` pointers covering ``path``: ``<path>.dvc`` itself or those inside a directory."""
    own = path.with_name(path.name + ".dvc")
    if own.is_file():
        return [own]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.dvc") if p.is_file() and ".dvc" not in p.parent.parts)
    return []


def pointer_outs(dvc_file: Path) -> list[Path]:
    """The workspace paths a ``.dvc`` pointer describes."""
    try:
        data = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        return [dvc_file.parent / str(out["path"]) for out in data.get("outs", [])]
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"unreadable DVC pointer file: {exc}",
            where=str(dvc_file),
            fix="restore it from git (`git checkout -- FILE`) or re-create it with `dvc add`",
        ) from exc


def default_remote(root: Path) -> str | None:
    """``name (url)`` of the configured default remote, or None."""
    proc = run_dvc(root, "remote", "default", check=False)
    name = proc.stdout.strip()
    if proc.returncode != 0 or not name:
        return None
    urls = dict(
        line.split(None, 1)
        for line in run_dvc(root, "remote", "list", check=False).stdout.splitlines()
        if len(line.split(None, 1)) == 2
    )
    url = urls.get(name, "").split()[0] if urls.get(name) else "?"
    return f"{name} ({url})"


def pull(root: Path, dvc_files: list[Path], missing: list[str]) -> None:
    """``dvc pull`` the pointers whose data the workspace lacks; clear errors for each way it fails."""
    rels = [f.relative_to(root).as_posix() for f in dvc_files]
    proc = run_dvc(root, "pull", *rels, check=False)
    if proc.returncode == 0:
        return
    remote = default_remote(root)
    if remote is None:
        raise BundlerError(
            f"weights are missing from the workspace and no DVC remote is configured: {', '.join(missing)}",
            where=f"{root / '.dvc' / 'config'}",
            fix="add one with `dvc remote add -d NAME URL` (or `dvc remote modify --local` for a "
            "machine-specific path), or produce the weights (`spectramind train`) and `dvc add` them",
        )
    raise BundlerError(
        f"DVC could not pull the weights from remote {remote}: {', '.join(missing)} ({_last_error(proc)})",
        where=", ".join(rels),
        fix="check the remote is reachable and holds them (`dvc status -c`), push them from the machine "
        "that made them (`dvc push`), or re-create them with `spectramind train` and `dvc add`",
    )


def ensure_weights(root: Path, entries: list[str], *, allow_missing: bool = False) -> list[WeightStatus]:
    """Make every configured weights path present (pulling through DVC); report each one's state.

    An entry with no ``.dvc`` pointer and no weights file (a missing path, or a folder holding only
    DVC's own files) is an error unless ``allow_missing``: then it is reported as ``missing``.
    """
    statuses: list[WeightStatus] = []
    tracked: list[tuple[Path, Path]] = []  # (pointer, out path)
    for entry in entries:
        path = root / entry
        pointers = pointer_files(path)
        if not pointers:
            if not _holds_weights(path):
                if not allow_missing:
                    raise BundlerError(
                        f"weights entry '{entry}' is absent: "
                        + ("no such path" if not path.exists() else "the folder holds no weights file")
                        + " and no .dvc pointer tracks it",
                        where=str(path),
                        fix="produce the weights (`spectramind train`) and `dvc add` them, restore the "
                        ".dvc pointer from git (then the build pulls them), remove the entry from "
                        "bundle.weights, or set bundle.allow_missing_weights=true for a bundle whose "
                        "runs are calibration-only (marked degraded)",
                    )
                statuses.append(WeightStatus(entry, "missing", None))
                continue
            statuses.append(WeightStatus(entry, "untracked", None))
            continue
        if not is_repo(root):
            raise UsageError(
                "weights have .dvc pointers but the project is not a DVC repository",
                where=str(root / ".dvc"),
                fix="run `dvc init` in the project (or restore its .dvc/ directory from git)",
            )
        outs = [(p, out) for p in pointers for out in pointer_outs(p)]
        tracked += outs
        statuses += [WeightStatus(rel, "untracked", None) for rel in _uncovered(root, path, outs)]
    missing = [(p, out) for p, out in tracked if not out.exists()]
    if missing:
        pull(
            root,
            sorted({p for p, _ in missing}),
            [out.relative_to(root).as_posix() for _, out in missing],
        )
    pulled = {out for _, out in missing}
    # Just-pulled outputs match their pointer; only the others can have been edited.
    modified = _modified(root, sorted({p for p, out in tracked if out not in pulled}))
    for pointer, out in tracked:
        rel = out.relative_to(root).as_posix()
        state = "pulled" if out in pulled else "modified" if rel in modified else "tracked"
        statuses.append(WeightStatus(rel, state, pointer.relative_to(root).as_posix()))
    return statuses


_DVC_META = frozenset({".gitignore", ".dvcignore"})


def _holds_weights(path: Path) -> bool:
    """A file, or a folder with at least one file that is not DVC's own."""
    if path.is_file():
        return True
    return path.is_dir() and any(
        f.is_file() and f.suffix != ".dvc" and f.name not in _DVC_META for f in path.rglob("*")
    )


def _uncovered(root: Path, path: Path, outs: list[tuple[Path, Path]]) -> list[str]:
    """Files in a weights directory that no pointer covers (packed too, so reported)."""
    if not path.is_dir():
        return []
    covered = [out for _, out in outs]
    return sorted(
        f.relative_to(root).as_posix()
        for f in path.rglob("*")
        if f.is_file()
        and f.suffix != ".dvc"
        and f.name not in _DVC_META
        and not any(f == out or out in f.parents for out in covered)
    )


def _modified(root: Path, pointers: list[Path]) -> set[str]:
    """Workspace outputs that differ from their pointer (``dvc status``)."""
    if not pointers:
        return set()
    proc = run_dvc(root, "status", "--json", *[p.relative_to(root).as_posix() for p in pointers])
    try:
        report = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return set()
    changed: set[str] = set()
    for items in report.values():
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                outs = item.get("changed outs", {})
                # "not in cache" only means the local DVC cache lacks a copy; the file itself matches.
                changed.update(str(k) for k, v in outs.items() if v == "modified")
    return changed


def track(root: Path, path: str) -> Path:
    """``dvc add PATH``: start tracking (or re-track) weights; returns the pointer file."""
    run_dvc(root, "add", path)
    return (root / path).with_name(Path(path).name + ".dvc")
