"""Repack a wheel uncompressed (ZIP_STORED): the same members, bytes, order, times and modes.

The boot shim unpacks the uv binary from its wheel inside the kernel. From a stored member that is a
plain copy (about 25 ms for uv's 38 MB here) instead of inflating it (about 180 ms); verification
hashes the bigger file at ~1.7 GB/s, a few ms more. Members, RECORD and the ``.dist-info`` are
untouched, so the result is still a valid wheel whose every file matches its RECORD; only the
archive's sha256 changes, and MANIFEST.json records it beside the locked one (``repacked``).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from bundler.errors import VerificationError


def store_wheel(source: Path, dest: Path) -> Path:
    """Write ``source`` re-archived without compression to ``dest`` (atomically); returns ``dest``."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-stored-", suffix=".whl")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as out:
            for info in src.infolist():
                data = src.read(info)  # zipfile checks each member's CRC-32 on the way
                member = zipfile.ZipInfo(info.filename, info.date_time)
                member.external_attr = info.external_attr
                member.create_system = info.create_system
                member.compress_type = zipfile.ZIP_STORED
                out.writestr(member, data)
        tmp.chmod(0o644)
        tmp.replace(dest)
    except zipfile.BadZipFile as exc:
        raise VerificationError(
            f"{source.name} is not a readable wheel: {exc}",
            where=str(source),
            fix="delete it from the build cache (python -m bundler build re-downloads it)",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return dest
