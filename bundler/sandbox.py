"""The local Kaggle sandbox (DESIGN §7): the image's environment recreated here, plus namespaces.

Three parts, each usable alone:

- `image_packages`: which image distributions a bundle relies on (MANIFEST ``skipped`` and their
  dependency closure inside the image, from the image manifest's ``Requires-Dist``).
- `image_env`: a venv holding exactly those distributions at the image's versions, built once and
  cached, keyed by the image sha256 and the package set. `run_env` then makes a thin per-run venv
  that sees the cached one through a ``.pth`` file, so a boot's installs never leak into the cache.
- `sandbox_argv`: the ``unshare`` command line that runs boot with no network (a new network
  namespace whose only interface is its own loopback, up as in a kernel: torchrun's rendezvous
  needs it), its own PID namespace, and a fresh root filesystem holding only what a kernel has: the
  system read-only, its own ``/tmp``, ``/dev/shm`` and ``/proc``, ``/kaggle/input`` read-only,
  ``/kaggle/working`` (the caller's output folder) and the image's Python. Host paths outside those
  mounts (the project, other temp files, unix sockets) are not there.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bundler.errors import BundlerError, UsageError
from bundler.image import ImageManifest
from bundler.pipenv import pip_env

COMPETITION_MOUNT = "/kaggle/input/ariel-data-challenge-2025"
_READY = ".spectramind-image-ready"


def image_packages(image: ImageManifest, roots: list[str]) -> list[tuple[str, str]]:
    """``(name, version)`` of ``roots`` and every image distribution they need, sorted by name.

    Requirements are followed only inside the image (what the image lacks, the bundle brings) and
    only when their marker holds for the target without extras.
    """
    env = {k: str(v) for k, v in default_environment().items()}
    env.update(python_version=".".join(image.python.split(".")[:2]), python_full_version=image.python)
    todo = [str(canonicalize_name(r)) for r in roots]
    seen: dict[str, tuple[str, str]] = {}
    while todo:
        key = todo.pop()
        dist = image.get(key)
        if dist is None or key in seen:
            continue
        seen[key] = (dist.name, dist.version)
        for raw in dist.requires:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            todo.append(str(canonicalize_name(req.name)))
    return sorted(seen.values(), key=lambda nv: canonicalize_name(nv[0]))


@dataclass(frozen=True)
class ImageEnv:
    """A recreated image environment (a venv) and how it was obtained."""

    path: Path
    python: Path
    site: Path
    packages: tuple[tuple[str, str], ...]
    cached: bool
    seconds: float


def _site(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise BundlerError(f"no site-packages in {venv}", where=str(venv), fix="delete it and run again")
    return found[0]


def image_env(
    image: ImageManifest,
    packages: list[tuple[str, str]],
    cache_root: Path,
    *,
    find_links: list[Path],
    index_url: str | None,
    python: str = sys.executable,
) -> ImageEnv:
    """The image's packages in a venv under ``cache_root``, created on first use, then reused."""
    started = time.monotonic()
    key_src = json.dumps(
        {"image": image.sha256, "python": image.python, "packages": sorted(packages)}, sort_keys=True
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    venv = cache_root / f"{image.name}-{key}"
    cache_root.mkdir(parents=True, exist_ok=True)
    # One creator at a time (tests, demo and users may share the cache); the venv is built aside
    # and renamed into place, so a reader never sees a half-made one.
    with (cache_root / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / _READY).is_file():
            return ImageEnv(venv, venv / "bin" / "python", _site(venv), tuple(packages), True, 0.0)
        partial = cache_root / f".{venv.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(venv, ignore_errors=True)
        _run([python, "-m", "venv", str(partial)], "create the image venv", env=pip_env())
        if packages:
            cmd = [str(partial / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-input", "-q"]
            cmd += [arg for link in find_links for arg in ("--find-links", str(link))]
            cmd += ["--index-url", index_url] if index_url else ["--no-index"]
            cmd += [f"{name}=={version}" for name, version in packages]
            _run(cmd, f"install {len(packages)} image package(s)", env=pip_env())
        (partial / _READY).write_text(key_src + "\n", encoding="utf-8")
        partial.rename(venv)  # the venv's python finds its prefix from pyvenv.cfg: relocatable
    seconds = round(time.monotonic() - started, 3)
    return ImageEnv(venv, venv / "bin" / "python", _site(venv), tuple(packages), False, seconds)


def run_env(base: ImageEnv, dest: Path) -> Path:
    """A thin venv at ``dest`` that sees ``base`` through a .pth file; returns its python.

    Boot installs into it (its site-packages come first on sys.path), the cached image stays as is.
    """
    _run([str(base.python), "-m", "venv", "--without-pip", str(dest)], "create the run venv", env=pip_env())
    (_site(dest) / "_spectramind_image.pth").write_text(f"{base.site}\n", encoding="utf-8")
    return dest / "bin" / "python"


def _run(cmd: list[str], what: str, *, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise BundlerError(
            f"sandbox: could not {what} (exit {proc.returncode}):\n{tail}",
            where=" ".join(cmd[:6]) + (" ..." if len(cmd) > 6 else ""),
            fix="check the image manifest versions and that their wheels are reachable (--find-links/index)",
        )


# The script run inside the new namespaces: it builds a fresh root holding only what a Kaggle kernel
# has (the system read-only, its own /tmp, /dev/shm and /proc, /kaggle/input read-only, /kaggle/working,
# and the image's Python), pivots into it, and boots. Arguments: root slug bundle out data base image
# runenv; then the boot command. Every mount lives and dies with the namespace; nothing is created on
# the host outside ``root`` (a folder of the caller's temp dir).
_INSIDE = r"""
set -euo pipefail
root=$1 slug=$2 bundle=$3 out=$4 data=$5 base=$6 image=$7 runenv=$8  # base: the image's interpreter
shift 8
if command -v ip >/dev/null; then ip link set lo up; fi  # this namespace's own loopback, as in a kernel
ro() { mount -o remount,bind,ro "$1"; }
bind() { mkdir -p "$2"; mount --rbind "$1" "$2"; }
mount -t tmpfs -o mode=0755 spectramind-root "$root"
for d in usr etc; do bind "/$d" "$root/$d"; ro "$root/$d"; done
for d in bin sbin lib lib64 lib32 libx32; do  # merged-/usr links stay links
  if [[ -L "/$d" ]]; then
    ln -s "$(readlink "/$d")" "$root/$d"
  elif [[ -d "/$d" ]]; then
    bind "/$d" "$root/$d"
    ro "$root/$d"
  fi
done
bind /dev "$root/dev"
mount -t tmpfs -o mode=1777 spectramind-shm "$root/dev/shm"
bind /sys "$root/sys"
mkdir -p "$root/proc" "$root/tmp" "$root/root" "$root/kaggle"
mount -t proc proc "$root/proc"  # this PID namespace's processes only
mount -t tmpfs -o mode=1777 spectramind-tmp "$root/tmp"
mount -t tmpfs -o mode=0700 spectramind-home "$root/root"
for p in "$base" "$image"; do bind "$p" "$root$p"; ro "$root$p"; done
bind "$runenv" "$root$runenv"
mount -t tmpfs -o mode=0755 spectramind-kaggle "$root/kaggle"
mkdir -p "$root/kaggle/input/$slug" "$root/kaggle/working"
bind "$bundle" "$root/kaggle/input/$slug"
ro "$root/kaggle/input/$slug"
if [[ -n "$data" ]]; then
  comp="$root/kaggle/input/ariel-data-challenge-2025"
  bind "$data" "$comp"
  ro "$comp"
fi
mount --bind "$out" "$root/kaggle/working"
mount -o remount,ro "$root/kaggle"
cd "$root"
mkdir .host
pivot_root . .host
umount -l /.host
rmdir /.host
cd /kaggle/working
export PATH="$runenv/bin:/usr/local/bin:/usr/bin:/bin" SPECTRAMIND_PYTHON="$runenv/bin/python"
export HOME=/root TMPDIR=/tmp
set +e
bash "/kaggle/input/$slug/boot/kaggle-boot.sh" "$@"  # not exec: this shell is PID 1 and reaps orphans
exit $?
"""


def sandbox_argv(
    *,
    root: Path,
    slug: str,
    bundle: Path,
    out: Path,
    data: Path | None,
    base: ImageEnv,
    run_env_dir: Path,
    command: list[str],
) -> list[str]:
    """``unshare`` argv running boot offline in a fresh root (root or user namespace).

    ``root``: an empty folder of the caller's temp dir; the sandbox's root filesystem is mounted there.
    """
    if shutil.which("unshare") is None:
        raise UsageError("`unshare` (util-linux) is not installed", fix="apt-get install util-linux")
    root.mkdir(parents=True, exist_ok=True)
    interpreter = base_prefix(base.python)
    args = [str(root), slug, str(bundle), str(out), str(data or ""), str(interpreter), str(base.path)]
    return [*_unshare_prefix(), "bash", "-c", _INSIDE, "sandbox", *args, str(run_env_dir), *command]


def base_prefix(python: Path) -> Path:
    """The installation a venv's interpreter runs from (``sys.base_prefix``): the sandbox mounts it."""
    proc = subprocess.run(
        [str(python), "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise BundlerError(
            f"cannot ask the image environment's Python for its installation: {proc.stderr.strip()[-300:]}",
            where=str(python),
            fix="delete the cached image environment (it is rebuilt on the next run)",
        )
    return Path(proc.stdout.strip())


def _unshare_prefix() -> list[str]:
    prefix = ["unshare", "--net", "--mount", "--pid", "--fork", "--propagation", "private"]
    if os.geteuid() != 0:  # an unprivileged user gets root inside a user namespace
        prefix.insert(1, "--map-root-user")
    return prefix


def unavailable() -> str | None:
    """Why the sandbox cannot run on this machine, or None when it can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run([*_unshare_prefix(), "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "cannot create network, mount and PID namespaces here (needs root or user namespaces)"
    if shutil.which("pivot_root") is None:
        return "pivot_root (util-linux) is not installed"
    return None
