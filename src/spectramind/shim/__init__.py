"""The boot shim: stdlib-only modules shipped verbatim as ``<bundle>/boot/shim/`` (DESIGN §1, §6).

It runs inside the Kaggle kernel before the bundle's packages are active, so it imports nothing
outside the standard library; its modules import each other relatively, so the same files run as
``shim`` from the bundle and as ``spectramind.shim`` on the build side and in tests.

- `base`: names, exit codes, `BootError`, the log, `atomic_write`
- `manifest`: MANIFEST.json, file hashes, the bundle hash
- `locate`: find the bundle; refuse a second one or one the kernel does not expect
- `verify`: the critical-path check and the background `Verifier`
- `target`: Python/ABI/platform checks, wheel tags
- `activate`: the installed delta, activated in place
- `install`: ``bundle.install=wheels``: offline install at boot
- `budget`: the time plan and the budgeted run
- `records`: submission checks, environment facts, the run records
- `main`: the boot sequence
"""

from .base import DEFAULT_INPUT, DEFAULT_OUTPUT, SUBMISSION_NAME, SUMMARY_NAME, BootError, atomic_write
from .manifest import MANIFEST_NAME, MANIFEST_SCHEMA, bundle_sha256, file_entries, read_manifest, seal
from .records import submission_problem
from .verify import VerifyReport, verify_bundle

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_OUTPUT",
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "SUBMISSION_NAME",
    "SUMMARY_NAME",
    "BootError",
    "VerifyReport",
    "atomic_write",
    "bundle_sha256",
    "file_entries",
    "read_manifest",
    "seal",
    "submission_problem",
    "verify_bundle",
]
