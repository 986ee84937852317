"""``python -m bundler verify BUNDLE_DIR``: recompute every hash against MANIFEST.json.

The check is the boot shim's own (`spectramind.shim.verify_bundle`), so what passes here passes in
the kernel. Exit 3 names each modified, missing and extra file; exit 0 prints a summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bundler.errors import EXIT_OK, EXIT_VERIFY, UsageError
from bundler.output import Result
from spectramind.shim import MANIFEST_NAME, read_manifest, verify_bundle


def run(args: argparse.Namespace) -> Result:
    root = Path(args.bundle_dir).resolve()
    if not root.is_dir():
        raise UsageError(
            "the bundle directory does not exist",
            where=str(root),
            fix="pass the directory `python -m bundler build` wrote (default dist/bundle)",
        )
    started = time.monotonic()
    report = verify_bundle(root)
    elapsed = round(time.monotonic() - started, 3)
    manifest = read_manifest(root) if (root / MANIFEST_NAME).is_file() and not report.errors else {}
    data = {
        "bundle": str(root),
        "bundle_sha256": report.bundle_sha256,
        "files": report.files,
        "bytes": report.bytes,
        "modified": report.modified,
        "missing": report.missing,
        "extra": report.extra,
        "errors": report.errors,
        "created": manifest.get("created"),
        "git_commit": manifest.get("git_commit"),
        "seconds": elapsed,
    }
    if not report.ok:
        messages = [f"modified: {p}" for p in report.modified]
        messages += [f"missing:  {p}" for p in report.missing]
        messages += [f"extra:    {p}" for p in report.extra]
        messages += [f"error:    {e}" for e in report.errors]
        counts = (
            f"{len(report.modified)} modified, {len(report.missing)} missing, "
            f"{len(report.extra)} extra, {len(report.errors)} other"
        )
        return Result(
            command="verify",
            data=data,
            title="bundle verification FAILED",
            rows=[
                ("bundle", str(root)),
                ("problems", counts),
                ("fix", "rebuild with `python -m bundler build`"),
            ],
            messages=messages,
            exit_code=EXIT_VERIFY,
        )
    return Result(
        command="verify",
        data=data,
        title="bundle verified",
        rows=[
            ("bundle", str(root)),
            ("files", str(report.files)),
            ("bytes", f"{report.bytes:,}"),
            ("bundle hash", report.bundle_sha256),
            ("created", str(manifest.get("created"))),
            ("time", f"{elapsed:.2f} s"),
        ],
        exit_code=EXIT_OK,
    )
