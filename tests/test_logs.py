"""Logs off a terminal (CI, a pipe, a file): plain lines, no live bars or spinners, nothing wrapped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests import test_build as tb

setuptools_whl, shared_cache, tiny = tb.setuptools_whl, tb.shared_cache, tb.tiny
LIVE_GLYPHS = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏━╸╺…"  # rich's spinner frames, bar segments and its truncation mark


def test_build_log_has_no_progress_glyphs_and_no_wrapped_lines(
    tiny: tb.TinyProject, tmp_path: Path, setuptools_whl: Path
) -> None:
    """Download progress rendered as '… …' lines and long paths wrapped at 80 columns in CI logs."""
    fresh = tb.TinyProject(tiny.root, tiny.index_files, tmp_path / "fresh-cache", index=tiny.index)
    fresh.seed_build_deps(setuptools_whl)  # an empty wheel cache: the build downloads
    out = tmp_path / ("a-rather-long-folder-name-for-the-bundle-" * 3) / "bundle"
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", *fresh.args(out)],
        cwd=tiny.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "download tinydep-1.0-py3-none-any.whl" in lines  # one plain line per download
    assert [line for line in lines if any(g in line for g in LIVE_GLYPHS)] == []
    assert len(str(out)) > 120 and any(str(out) in line for line in lines)  # whole, on one line
    assert all("\r" not in line and "\x1b[" not in line for line in lines)  # no cursor tricks


def test_status_and_progress_off_a_terminal_are_one_plain_line_each() -> None:
    """The sandbox's 'image environment' spinner and any progress bar print their text once, plainly."""
    script = (
        "from bundler.output import console, progress_display\n"
        "with console.status('preparing the image environment'):\n"
        "    pass\n"
        "with progress_display() as p:\n"
        "    t = p.add_task('download x.whl', total=10)\n"
        "    p.update(t, advance=10)\n"
        "console.print('/' + 'long-path-segment/' * 12 + 'end')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES"}}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stderr.splitlines() == [
        "preparing the image environment",
        "download x.whl",
        "/" + "long-path-segment/" * 12 + "end",
    ]
