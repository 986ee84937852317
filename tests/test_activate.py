"""The installed delta, activated in place inside the real sandbox (read-only /kaggle/input, no network).

One bundle exercises every kind of package the activation must handle: a delta that upgrades a
package the image has, a ``.pth`` file, a console script, a C extension that loads a shared library
it bundles, and an image with its own ``sitecustomize`` that must still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bundler import sandbox
from tests.support.bundles import (
    BundleSpec,
    Pin,
    make_bundle,
    make_data,
    make_pkg_wheel,
    make_spectramind_wheel,
)
from tests.support.images import image_manifest
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))

NATIVE_C = r"""
#include <Python.h>
int tiny_answer(void);
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(tiny_answer()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
"""

ENTRY_POINTS = b"[console_scripts]\nhello-delta = scriptpkg:main\n"
LINK = ("-ltiny", "-Wl,-rpath,$ORIGIN")  # the extension finds libtiny.so beside itself

PROBE = r"""
import importlib.metadata, json, os, shutil, subprocess, sys
import cpkg._native as native
import hidden_mod
import imgpkg
child = "import imgpkg, importlib.metadata as m; print(imgpkg.__version__, m.version('imgpkg'))"
plain = "import os, sys; print(sys.modules['sitecustomize'].__file__, os.environ.get('IMAGE_SITECUSTOMIZE'))"
without = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IMAGE_SITECUSTOMIZE")}
res = {
    "imgpkg": [imgpkg.__version__, importlib.metadata.version("imgpkg"), imgpkg.__file__],
    "pth_ran": os.environ.get("PTHPKG_RAN"),
    "hidden": hidden_mod.__file__,
    "sys_path": sys.path,
    "native": [native.answer(), native.__file__],
    "image_sitecustomize": os.environ.get("IMAGE_SITECUSTOMIZE"),
    "sitecustomize": sys.modules["sitecustomize"].__file__,
    "image_default": subprocess.run([sys.executable, "-c", plain], env=without, capture_output=True,
                                    text=True).stdout.split(),
    "script": [
        shutil.which("hello-delta"),
        subprocess.run(["hello-delta"], capture_output=True, text=True).stdout,
    ],
    "child": subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout.split(),
    "cached": imgpkg.__cached__,
}
json.dump(res, open("/kaggle/working/probe.json", "w"))
"""


def _native_wheel(root: Path) -> Path:
    """cpkg: a C extension linked against libtiny.so, which the wheel ships beside it (rpath $ORIGIN)."""
    build = root / "cbuild" / "cpkg"
    build.mkdir(parents=True)
    (build.parent / "tiny.c").write_text("int tiny_answer(void) { return 42; }\n")
    (build.parent / "native.c").write_text(NATIVE_C)
    cc = ["gcc", "-shared", "-fPIC", "-O1"]
    subprocess.run([*cc, "-o", str(build / "libtiny.so"), str(build.parent / "tiny.c")], check=True)
    ext = "_native" + str(sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        [*cc, f"-I{include}", "-o", str(build / ext), str(build.parent / "native.c"), f"-L{build}", *LINK],
        check=True,
    )
    abi = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    files = {
        "cpkg/__init__.py": b"",
        f"cpkg/{ext}": (build / ext).read_bytes(),
        "cpkg/libtiny.so": (build / "libtiny.so").read_bytes(),
    }
    modes = {f"cpkg/{ext}": 0o755, "cpkg/libtiny.so": 0o755}
    return make_pkg_wheel(root / "wheels", "cpkg", "1.0", files, tag=f"{abi}-{abi}-linux_x86_64", modes=modes)


class Kit:
    def __init__(self, root: Path) -> None:
        self.root = root
        w = root / "wheels"
        self.spectramind = make_spectramind_wheel(w)
        self.img_old = make_wheel(root / "image-wheels", "imgpkg", "1.0")
        self.img_new = make_wheel(w, "imgpkg", "2.0")
        self.imagesite = make_pkg_wheel(
            root / "image-wheels",
            "imagesite",
            "1.0",
            {"sitecustomize.py": b"import os\nos.environ['IMAGE_SITECUSTOMIZE'] = 'ran'\n"},
        )
        self.pthpkg = make_pkg_wheel(
            w,
            "pthpkg",
            "1.0",
            {
                "pthpkg/__init__.py": b"",
                "pthpkg.pth": b"pthpkg_extra\nimport os; os.environ.setdefault('PTHPKG_RAN', 'yes')\n",
                "pthpkg_extra/hidden_mod.py": b"HIDDEN = True\n",
            },
        )
        self.scriptpkg = make_pkg_wheel(
            w,
            "scriptpkg",
            "1.0",
            {
                "scriptpkg/__init__.py": b"def main():\n    print('hello from the delta')\n",
                "scriptpkg-1.0.dist-info/entry_points.txt": ENTRY_POINTS,
            },
        )
        self.cpkg = _native_wheel(root)
        major, minor = sys.version_info[:2]
        self.image = root / "image.json"
        dists = [
            {"name": "imgpkg", "version": "1.0", "requires_dist": []},
            {"name": "imagesite", "version": "1.0", "requires_dist": []},
        ]
        self.image.write_text(
            json.dumps(image_manifest("test-image", dists, python=f"{major}.{minor}.0", glibc=None))
        )
        self.data = make_data(root / "data")
        (self.data / "probe.py").write_text(PROBE)

    def bundle(self, dest: Path) -> Path:
        pins = [
            Pin("imgpkg", "2.0", self.img_new),
            Pin("imagesite", "1.0", self.imagesite, ship=False),
            Pin("pthpkg", "1.0", self.pthpkg),
            Pin("scriptpkg", "1.0", self.scriptpkg),
            Pin("cpkg", "1.0", self.cpkg),
        ]
        return make_bundle(dest, BundleSpec(pins=pins, spectramind=self.spectramind))

    def simulate(
        self, bundle: Path, out: Path, command: str
    ) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPECTRAMIND_")}
        env.update(
            SPECTRAMIND_SIM_IMAGE=str(self.image),
            SPECTRAMIND_SIM_CACHE=str(self.root / "cache"),
            SPECTRAMIND_SIM_FIND_LINKS=str(self.root / "image-wheels"),
            SPECTRAMIND_SIM_INDEX_URL="none",
            SPECTRAMIND_INFO_TIMEOUT_S="20",
        )
        cmd = [sys.executable, "-m", "bundler", "simulate", str(bundle), "--data", str(self.data)]
        cmd += ["--budget", "60", "--out", str(out), "--json", "--command", command]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
        return proc, (json.loads(proc.stdout) if proc.stdout.strip() else {})


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("activate"))


def test_delta_activated_in_place_from_the_read_only_mount(kit: Kit, tmp_path: Path) -> None:
    bundle = kit.bundle(tmp_path / "bundle")
    out = tmp_path / "working"
    proc, data = kit.simulate(bundle, out, "python /kaggle/input/ariel-data-challenge-2025/probe.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert data["reason"] == "completed"
    probe = json.loads((out / "probe.json").read_text())
    lib = "/kaggle/input/spectramind-test-bundle/site/lib"
    # the delta's imgpkg 2.0 wins over the image's 1.0, in imports and in metadata, in children too
    assert probe["imgpkg"] == ["2.0", "2.0", f"{lib}/imgpkg/__init__.py"]
    assert probe["child"] == ["2.0", "2.0"]
    # the .pth file of site/lib ran, and the path it adds comes right after site/lib
    assert probe["pth_ran"] == "yes"
    assert probe["hidden"] == f"{lib}/pthpkg_extra/hidden_mod.py"
    assert probe["sys_path"].index(f"{lib}/pthpkg_extra") == probe["sys_path"].index(lib) + 1
    # the C extension and the shared library it bundles load from the read-only mount
    assert probe["native"][0] == 42 and probe["native"][1].startswith(f"{lib}/cpkg/_native")
    # console script callable by name, running with this interpreter
    assert probe["script"][1].strip() == "hello from the delta" and probe["script"][0].endswith(
        "/hello-delta"
    )
    # the image's own sitecustomize still ran, under its own name: the very one this interpreter runs
    # without activation (a distribution's in site-packages, or the system's own, e.g. Debian's)
    default_file, default_marker = probe["image_default"]
    assert probe["sitecustomize"] == default_file
    assert (probe["image_sitecustomize"] or "None") == default_marker
    if default_file.endswith("site-packages/sitecustomize.py"):
        assert probe["image_sitecustomize"] == "ran"
    # bytecode came from the bundle (compiled at build), not written at run time
    assert probe["cached"].startswith(f"{lib}/imgpkg/__pycache__/")
    summary = json.loads((out / "run_hash_summary_v50.json").read_text())
    assert summary["activate"]["scripts"] == ["hello-delta"] and summary["activate"]["pth"] == ["pthpkg.pth"]
    assert summary["activate"]["distributions"] == 5
    assert summary["timings_s"]["activate"] < 1.0
    assert summary["verification"]["ok"] is True
