"""``python -m bundler build``: pack the Kaggle dataset.

A pipeline of small steps over one staging directory beside ``--out``:
wheelhouse → project wheel → site (the delta installed, .pyc for the target) → configs → weights (DVC)
→ boot → lock → Kaggle metadata → SBOMs (CycloneDX and SPDX) → secrets / safety / limits →
MANIFEST.json → atomic publish → kernel folders (``<out>/../kernels``). With ``bundle.install=wheels``
the wheels ship in ``wheels/`` instead of ``site/`` and boot installs them.
Nothing reaches ``--out`` before every check passed; a build killed midway leaves the previous
bundle whole.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bundler import dvc, extras, kernels, outlock, pack, secrets, tempdirs
from bundler.config import Settings, load
from bundler.errors import BundlerError, UsageError
from bundler.image import load_image
from bundler.output import Result, console
from bundler.projectwheel import ProjectWheel, build_project_wheel
from bundler.sbom import SBOM_NAME, SPDX_NAME, Package, make_sbom, make_spdx
from bundler.siteinstall import Installed, Pyc, cached_tree, compile_tree, find_pyc, merge_trees
from spectramind.shim import atomic_write

# Test-only hook, explicit by name: pause before this step (the atomicity test SIGKILLs the build there).
PAUSE_ENV = "SPECTRAMIND_TEST_BUILD_PAUSE_AT"
_DEFAULT_EPOCH = 315532800  # 1980-01-01: no SOURCE_DATE_EPOCH and no git commit to date the build


@dataclass(frozen=True)
class BuildInputs:
    """Everything that decides the bundle's bytes, resolved once."""

    settings: Settings
    out: Path
    lock: Path
    kernels_out: Path
    offline: bool
    allow_clobber: bool
    epoch: int
    git_commit: str | None


@dataclass
class BuildState:
    """What the steps produced so far (the stage is the bundle-to-be)."""

    stage: Path
    scratch: Path  # wheels that are installed into site/ rather than shipped (beside the stage)
    wheelhouse: Any = None  # bundler.wheelhouse.WheelhouseResult
    project_wheel: ProjectWheel | None = None
    weights: list[dvc.WeightStatus] = field(default_factory=list)
    kernel_plan: list[kernels.KernelPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    usage: pack.Usage | None = None
    site: list[Installed] = field(default_factory=list)
    pyc: Pyc | None = None

    def wheels_dir(self, inp: BuildInputs) -> Path:
        """Where fetched and built wheels go: shipped in wheels/, or kept aside to install into site/."""
        return self.stage / "wheels" if inp.settings.bundle.install == "wheels" else self.scratch / "wheels"


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def git_info(root: Path, content: list[str] | None = None) -> tuple[str | None, int | None]:
    """The last commit that touched ``content`` (HEAD when empty or none did), and its time.

    The bundle names and dates itself by its packed inputs rather than by HEAD: both are covered by
    ``bundle_sha256``, and a commit that changes nothing packed (docs, say) keeps the bundle, so its
    hash, the same: push then uploads nothing. Returns (None, None) outside a git checkout.
    """
    fmt = ("log", "-1", "--format=%H %ct")
    found = (_git(root, *fmt, "--", *content) if content else None) or _git(root, *fmt)
    if found is None or len(found.split()) != 2 or not found.split()[1].isdigit():
        return None, None
    commit, when = found.split()
    return commit, int(when)


def source_date_epoch(commit_time: int | None) -> int:
    """``SOURCE_DATE_EPOCH`` when set, else the packed inputs' commit time, else a fixed date (never now)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if value:
        if not value.isdigit():
            raise UsageError(
                f"SOURCE_DATE_EPOCH is not a number of seconds: {value!r}",
                where="environment",
                fix="unset it or set it to a unix time, e.g. $(git log -1 --format=%ct)",
            )
        return int(value)
    return commit_time if commit_time is not None else _DEFAULT_EPOCH


def lock_path(args: argparse.Namespace, settings: Settings) -> Path:
    """``--lock``, else ``bundle.lock``; it must exist."""
    lock = Path(args.lock).resolve() if args.lock else settings.path(settings.bundle.lock)
    if not lock.is_file():
        raise UsageError(
            "the lock file does not exist",
            where=str(lock),
            fix="create it with `python -m bundler lock` (or pass --lock PATH)",
        )
    return lock


def resolve_inputs(args: argparse.Namespace) -> BuildInputs:
    settings = load(list(args.overrides or []), args.config_dir)
    out = Path(args.out).resolve() if args.out else settings.path(settings.bundle.out)
    lock = lock_path(args, settings)
    if out == settings.root or settings.root.is_relative_to(out):
        raise UsageError("--out would replace the project itself", where=str(out), fix="use dist/bundle")
    if out.name == "kernels":  # the kernel folders are written to <out>/../kernels
        raise UsageError("--out may not be named 'kernels'", where=str(out), fix="use dist/bundle")
    b = settings.bundle
    content = [b.project_dir, *b.configs, *b.weights, "bin/kaggle-boot.sh"]
    asked = extras.resolve(list(b.extras), settings.path(b.requirements_in), lock)
    for path in (lock, *(e.lock for e in asked)):  # an extra's lock is packed too (in requirements.lock)
        if path.is_relative_to(settings.root):
            content.append(path.relative_to(settings.root).as_posix())
    commit, commit_time = git_info(settings.root, content)
    return BuildInputs(
        settings=settings,
        out=out,
        lock=lock,
        kernels_out=kernels.kernels_beside(out),
        offline=bool(args.offline),
        allow_clobber=bool(args.allow_clobber) or settings.bundle.allow_clobber,
        epoch=source_date_epoch(commit_time),
        git_commit=commit,
    )


# --- steps ---------------------------------------------------------------------------------------


def step_wheelhouse(inp: BuildInputs, st: BuildState) -> None:
    from bundler.wheelhouse import build_wheelhouse

    st.wheels_dir(inp).mkdir(parents=True, exist_ok=True)
    st.wheelhouse = build_wheelhouse(
        inp.settings,
        lock=inp.lock,
        dest=st.wheels_dir(inp),
        offline=inp.offline,
        allow_clobber=inp.allow_clobber,
    )
    st.warnings += list(st.wheelhouse.warnings)


def step_project_wheel(inp: BuildInputs, st: BuildState) -> None:
    s = inp.settings
    wheel = build_project_wheel(
        s.path(s.bundle.project_dir),
        st.wheels_dir(inp),
        cache_dir=s.path(s.bundle.cache_dir),
        index_url=s.bundle.index_url,
        epoch=inp.epoch,
        offline=inp.offline,
    )
    others = [r.filename for r in st.wheelhouse.wheels if r.name.lower() == wheel.name.lower()]
    if others:
        raise UsageError(
            f"the lock also pins the project itself ({', '.join(others)})",
            where=str(inp.lock),
            fix="remove the project from requirements.in and re-lock; the build adds its own wheel",
        )
    st.project_wheel = wheel


def step_site(inp: BuildInputs, st: BuildState) -> None:
    """Install every delta wheel and the project wheel into site/ (cached trees, .pyc for the target)."""
    if inp.settings.bundle.install == "wheels":
        return
    assert st.project_wheel is not None  # noqa: S101 -- step order
    s = inp.settings
    if not s.bundle.pyc:
        st.pyc = Pyc(None, None, "bundle.pyc=false: modules compile once per kernel, into a writable cache")
    else:
        st.pyc = find_pyc(s.target.python)
        if st.pyc.python is None:
            st.warnings.append(st.pyc.reason)
    wheels = [(r.name, r.version, r.filename, r.sha256) for r in st.wheelhouse.wheels]
    pw = st.project_wheel
    wheels.append((pw.name, pw.version, pw.filename, pw.sha256))
    cache = s.path(s.bundle.cache_dir)
    for name, version, filename, sha in wheels:
        st.site.append(
            cached_tree(
                st.wheels_dir(inp) / filename, sha, name=name, version=version, pyc=st.pyc, cache_dir=cache
            )
        )
    pack.check_totals(
        pack.Usage(("site",), sum(i.files for i in st.site), sum(i.bytes for i in st.site)),
        s.bundle.limits,
        where=f"site/: {len(st.site)} installed distributions, checked before copying",
    )
    st.warnings += merge_trees(st.site, st.stage / "site")


def _copy_entries(
    inp: BuildInputs, st: BuildState, entries: list[str], dest: Path, exclude: Callable[[str], bool]
) -> None:
    """Copy config entries into the stage, once the limits allow what they would add."""
    root = inp.settings.root
    sources = [inp.settings.path(entry) for entry in entries]
    adding = pack.measure([p for p in sources if p.exists()], project_root=root, exclude=exclude)
    staged = pack.usage(st.stage)
    top = {*staged.top_level, dest.relative_to(st.stage).parts[0]}
    pack.check_totals(
        pack.Usage(tuple(sorted(top)), staged.files + adding.files, staged.bytes + adding.bytes),
        inp.settings.bundle.limits,
        where=f"{', '.join(entries)}: {adding.files:,} files, {adding.bytes:,} bytes, checked before copying",
    )
    for entry, src in zip(entries, sources, strict=True):
        if src.is_dir():
            pack.copy_tree(src, dest, project_root=root, exclude=exclude)
        elif src.is_file() or src.is_symlink():
            pack.copy_file(src, dest / src.name, project_root=root)
        else:
            raise UsageError(f"'{entry}' does not exist", where=str(src), fix="fix the bundle config entry")


def step_configs(inp: BuildInputs, st: BuildState) -> None:
    _copy_entries(inp, st, inp.settings.bundle.configs, st.stage / "configs", lambda _name: False)


def step_weights(inp: BuildInputs, st: BuildState) -> None:
    entries = inp.settings.bundle.weights
    allow_missing = inp.settings.bundle.allow_missing_weights
    st.weights = dvc.ensure_weights(inp.settings.root, entries, allow_missing=allow_missing)
    for w in st.weights:
        if w.state == "missing":
            st.warnings.append(
                f"weights entry {w.path} is absent: not packed (bundle.allow_missing_weights=true); "
                "predictions will be calibration-only and marked degraded"
            )
        elif w.state == "modified":
            st.warnings.append(
                f"{w.path} differs from {w.dvc_file}: packing the workspace copy (`dvc add` it)"
            )
        elif w.state == "untracked":
            st.warnings.append(f"{w.path} is not tracked by DVC: packing it as is (`dvc add {w.path}`)")
    dvc_meta = {".gitignore", ".dvcignore"}
    present = [e for e in entries if not any(w.path == e and w.state == "missing" for w in st.weights)]
    _copy_entries(inp, st, present, st.stage / "weights", lambda n: n in dvc_meta or n.endswith(".dvc"))


def step_boot(inp: BuildInputs, st: BuildState) -> None:
    s = inp.settings
    script = s.root / "bin" / "kaggle-boot.sh"
    shim = s.path(s.bundle.project_dir) / "spectramind" / "shim"
    if not script.is_file() or not (shim / "main.py").is_file():
        raise UsageError(
            "the boot files are missing",
            where=f"{script}, {shim}/",
            fix="restore bin/kaggle-boot.sh and src/spectramind/shim/ from git",
        )
    pack.copy_file(script, st.stage / "boot" / "kaggle-boot.sh", project_root=s.root, executable=True)
    for module in sorted(shim.glob("*.py")):  # the stdlib-only shim package, as shipped
        pack.copy_file(module, st.stage / "boot" / "shim" / module.name, project_root=s.root)
    # Compiled for the target like site/: the kernel's Python (run with -B) then compiles nothing.
    compile_tree(st.stage / "boot" / "shim", st.pyc or find_pyc(s.target.python), "boot/shim")


def step_lock(inp: BuildInputs, st: BuildState) -> None:
    pack.copy_file(inp.lock, st.stage / "requirements.lock", project_root=inp.lock.parent)
    if st.wheelhouse.extras:  # one lock in the bundle: wheels-mode boot and `spectramind test` read it
        text = inp.lock.read_bytes().rstrip(b"\n") + b"\n"
        for extra in st.wheelhouse.extras:
            text += _extra_lock_bytes(inp.lock.parent / extra["lock"], extra["lock_sha256"])
        atomic_write(st.stage / "requirements.lock", text)


def _extra_lock_bytes(path: Path, sha256: str) -> bytes:
    """An extra's lock as the wheelhouse read it (a lock re-written during the build is refused)."""
    data = path.read_bytes()
    if pack.sha256_bytes(data) != sha256:
        raise BundlerError(
            "the lock changed while the bundle was being built", where=str(path), fix="run the build again"
        )
    return data


def step_metadata(inp: BuildInputs, st: BuildState) -> None:
    bundle = inp.settings.bundle
    pack.write_json(st.stage / kernels.METADATA_NAME, kernels.dataset_metadata(bundle))
    image = load_image(inp.settings.config_dir, inp.settings.target.image)
    st.kernel_plan = kernels.plan_kernels(inp.settings.path(bundle.kernels_dir), bundle, image.docker_image)
    if st.kernel_plan and not image.docker_image:
        st.warnings.append(
            f"image manifest {inp.settings.target.image} records no kaggle.docker_image: kernels run on "
            "Kaggle's current image, which may differ from the one the lock was made against"
        )


def step_sbom(inp: BuildInputs, st: BuildState) -> None:
    assert st.project_wheel is not None  # noqa: S101 -- step order
    wheel = st.project_wheel
    in_extra = {p["name"]: e["name"] for e in st.wheelhouse.extras for p in e["packages"]}
    # "downloaded" vs "cache" is build history, not content: both are "index" so rebuilds match.
    packages = [
        Package(
            r.name,
            r.version,
            "built" if r.origin == "built" else "index",
            r.filename,
            r.sha256,
            extra=in_extra.get(r.name),
        )
        for r in st.wheelhouse.wheels
    ]
    packages.append(Package(wheel.name, wheel.version, "project", wheel.filename, wheel.sha256))
    packages += [
        Package(p["name"], p["version"], "image", extra=in_extra.get(p["name"]))
        for p in st.wheelhouse.skipped
    ]
    for name, make in ((SBOM_NAME, make_sbom), (SPDX_NAME, make_spdx)):  # one package list, two formats
        text = make(
            bundle_name=inp.settings.bundle.dataset.rsplit("/", 1)[-1],
            version=wheel.version,
            packages=packages,
            created_epoch=inp.epoch,
        )
        atomic_write(st.stage / name, text.encode())


def step_checks(inp: BuildInputs, st: BuildState) -> None:
    assert st.project_wheel is not None  # noqa: S101 -- step order
    s = inp.settings
    wheel = st.wheels_dir(inp) / st.project_wheel.filename
    project_wheel = wheel.relative_to(st.stage).as_posix() if wheel.is_relative_to(st.stage) else None
    # Third-party files of site/ are opaque, as their wheels are: they came hash-checked from the lock.
    third_party = _third_party_site(st)
    secrets.require_clean(st.stage, wheels_to_open=[project_wheel] if project_wheel else [], skip=third_party)
    needles = [str(s.root), str(st.stage), str(st.scratch), str(s.path(s.bundle.cache_dir))]
    pack.check_no_build_paths(st.stage, needles, skip=third_party)
    pack.check_wheel_for_paths(wheel, needles, where=project_wheel or f"site/ <- {wheel.name}")
    st.usage = pack.check_limits(st.stage, s.bundle.limits)


def _third_party_site(st: BuildState) -> Callable[[str], bool]:
    """True for a path under site/ that no project file is at (the project's own files are scanned)."""
    assert st.project_wheel is not None  # noqa: S101 -- step order
    own = next((i.tree for i in st.site if i.name == st.project_wheel.name), None)
    ours = {p.relative_to(own).as_posix() for p in own.rglob("*") if p.is_file()} if own else set()
    return lambda rel: rel.startswith("site/") and rel.removeprefix("site/") not in ours


def step_manifest(inp: BuildInputs, st: BuildState) -> None:
    assert st.project_wheel is not None  # noqa: S101 -- step order
    image = load_image(inp.settings.config_dir, inp.settings.target.image)
    target = inp.settings.target
    wheel = st.project_wheel
    built = [asdict(r) for r in st.wheelhouse.built]
    built.append({**asdict(wheel), "origin": "project"})
    for record in built:
        record.pop("cached", None)
    pack.set_times(st.stage, inp.epoch)
    st.manifest = pack.write_manifest(
        st.stage,
        {
            "target": {"python": target.python, "abi": target.abi, "platforms": list(target.platforms)},
            "image": {"name": image.name, "sha256": image.sha256},
            "lock_sha256": pack.sha256_bytes((st.stage / "requirements.lock").read_bytes()),
            "git_commit": inp.git_commit,
            "created": pack.created_iso(inp.epoch),
            "skipped": sorted(st.wheelhouse.skipped, key=lambda p: (p["name"], p["version"])),
            "built": sorted(built, key=lambda r: r["filename"]),
            "install": inp.settings.bundle.install,
            "site": [
                {"name": i.name, "version": i.version, "sha256": i.sha256, "files": i.files}
                for i in sorted(st.site, key=lambda i: i.name)
            ],
            "pyc": st.pyc.manifest() if st.pyc is not None else {"mode": "none", "reason": "wheels mode"},
            **({"extras": st.wheelhouse.extras} if st.wheelhouse.extras else {}),
        },
    )
    pack.set_times(st.stage, inp.epoch)


def step_publish(inp: BuildInputs, st: BuildState) -> None:
    pack.publish(st.stage, inp.out)


STEPS: tuple[tuple[str, Callable[[BuildInputs, BuildState], None]], ...] = (
    ("wheelhouse", step_wheelhouse),
    ("project wheel", step_project_wheel),
    ("site", step_site),
    ("configs", step_configs),
    ("weights", step_weights),
    ("boot", step_boot),
    ("lock", step_lock),
    ("metadata", step_metadata),
    ("sbom", step_sbom),
    ("checks", step_checks),
    ("manifest", step_manifest),
    ("publish", step_publish),
)


def build(inp: BuildInputs) -> BuildState:
    """Build while holding --out's lock (a second build into it is refused); see `_build`."""
    with outlock.exclusive(inp.out):
        tempdirs.clean_build_leftovers(inp.settings.path(inp.settings.bundle.cache_dir))
        return _build(inp)


def _build(inp: BuildInputs) -> BuildState:
    """Run every step over a fresh stage; on any failure the stage is removed and --out untouched."""
    stage = pack.new_stage(inp.out)
    st = BuildState(stage=stage, scratch=pack.new_stage(inp.out, "scratch"))
    try:
        for number, (name, step) in enumerate(STEPS, start=1):
            _test_pause(name)
            started = time.monotonic()
            console.print(f"[{number}/{len(STEPS)}] {name} ...", highlight=False)
            step(inp, st)
            st.timings[name] = round(time.monotonic() - started, 3)
    except BaseException:
        shutil.rmtree(st.stage, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(st.scratch, ignore_errors=True)
    kernels.write_kernels(st.kernel_plan, inp.kernels_out, bundle_sha256=st.manifest["bundle_sha256"])
    return st


def _test_pause(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        console.print(f"test hook {PAUSE_ENV}: paused before {step}", highlight=False)
        time.sleep(float(os.environ.get(f"{PAUSE_ENV}_S", "600")))


def run(args: argparse.Namespace) -> Result:
    started = time.monotonic()
    inp = resolve_inputs(args)
    st = build(inp)
    assert st.project_wheel is not None and st.usage is not None  # noqa: S101 -- build ran every step
    wh = st.wheelhouse
    m = st.manifest
    total = sum(e["size"] for e in m["files"])
    data: dict[str, Any] = {
        "bundle": str(inp.out),
        "bundle_sha256": m["bundle_sha256"],
        "files": len(m["files"]),
        "bytes": total,
        "top_level": sorted([*st.usage.top_level, "MANIFEST.json"]),
        "install": inp.settings.bundle.install,
        "wheels": [asdict(r) for r in wh.wheels] + [asdict(st.project_wheel)],
        "site": m["site"],
        "pyc": m["pyc"],
        "skipped": m["skipped"],
        "built": m["built"],
        "weights": [asdict(w) for w in st.weights],
        "kernels": [
            {"name": k.name, "id": k.id, "path": str(inp.kernels_out / k.name)} for k in st.kernel_plan
        ],
        "network_requests": wh.network_requests,
        "extras": wh.extras,
        "created": m["created"],
        "git_commit": m["git_commit"],
        "warnings": st.warnings,
        "timings_s": {**st.timings, "total": round(time.monotonic() - started, 3)},
    }
    rows = [
        ("bundle", str(inp.out)),
        ("files", str(len(m["files"]))),
        (
            "delta",
            f"{len(wh.wheels) + 1} wheels ({len(m['built'])} built from sdist, "
            f"incl. {st.project_wheel.filename}), "
            + ("installed in site/" if m["install"] == "site" else "shipped in wheels/"),
        ),
        ("pyc", f"{m['pyc']['mode']} (Python {m['pyc'].get('python') or 'none found'})"),
        ("skipped", f"{len(m['skipped'])} (the image has them)"),
        ("extras", ", ".join(e["name"] for e in wh.extras) or "none"),
        ("bytes", f"{total:,} ({total / 1024**2:.1f} MiB)"),
        ("bundle hash", m["bundle_sha256"]),
        ("kernels", ", ".join(k.name for k in st.kernel_plan) or "(none)"),
        ("time", f"{data['timings_s']['total']:.1f} s"),
    ]
    return Result(
        command="build",
        data=data,
        title="bundle built",
        rows=rows,
        messages=[f"warning: {w}" for w in st.warnings],
    )
