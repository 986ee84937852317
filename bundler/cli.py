"""``python -m bundler``: the command line of DESIGN §4, one parser, one error sink.

Command modules are imported only when their command runs, so ``probe`` stays stdlib-only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bundler.output import Result

# command -> module with `run(args) -> Result`
COMMANDS = {
    "lock": "bundler.commands.lock",
    "build": "bundler.commands.build",
    "verify": "bundler.commands.verify",
    "simulate": "bundler.commands.simulate",
    "push": "bundler.commands.push",
    "demo": "bundler.commands.demo",
    "probe": "bundler.freeze",  # probe --from-freeze; the live probe runs before any import (stdlib-only)
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bundler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        cmd.add_argument("--config-dir", default=None, help="configs directory (default: ./configs)")
        return cmd

    lock = add("lock", "resolve requirements.in into a hash-locked requirements.lock for the target")
    lock.add_argument(
        "--in", dest="req_in", default=None, help="requirements.in (default: bundle.requirements_in)"
    )
    lock.add_argument("--out", default=None, help="lock file to write (default: bundle.lock)")
    lock.add_argument("--check", action="store_true", help="fail if the lock is out of date; write nothing")
    lock.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. target=ariel2025-cp311")

    build = add("build", "build the Kaggle dataset bundle (wheelhouse, project wheel, configs, weights)")
    build.add_argument("--lock", default=None, help="lock file (default: bundle.lock)")
    build.add_argument("--out", default=None, help="bundle directory (default: bundle.out)")
    build.add_argument("--offline", action="store_true", help="use only the local wheel cache")
    build.add_argument("--allow-clobber", action="store_true", help="build even if image packages break")
    build.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. env=kaggle bundle.out=DIR")

    verify = add("verify", "recompute every hash of a bundle against its MANIFEST.json")
    verify.add_argument("bundle_dir", metavar="BUNDLE_DIR")

    simulate = add("simulate", "boot a bundle offline in the local Kaggle sandbox")
    simulate.add_argument("bundle_dir", metavar="BUNDLE_DIR")
    simulate.add_argument("--data", default=None, help="competition data to mount (default: data.root)")
    simulate.add_argument("--budget", type=float, default=None, help="time budget in seconds")
    simulate.add_argument("--out", default=None, help="where /kaggle/working ends up")
    simulate.add_argument("--command", dest="run_command", default=None, help="command to boot")
    simulate.add_argument("overrides", nargs="*", help="Hydra overrides")

    push = add("push", "push the bundle dataset and kernels through the Kaggle API")
    push.add_argument("bundle_dir", metavar="BUNDLE_DIR")
    push.add_argument("--kernels", default=None, help="kernel folders (default: dist/kernels)")
    push.add_argument("--wait", action="store_true", help="wait for kernels to finish; fetch outputs")
    push.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    push.add_argument("--submit", action="store_true", help="submit the finished kernel version")
    push.add_argument("--timeout", type=float, default=3600.0, help="overall wait limit in seconds")

    demo = add("demo", "main job on the embedded demo: data, train, lock, build, simulate, score")
    demo.add_argument("--budget", type=float, default=600.0, help="sandbox time budget in seconds")
    demo.add_argument("overrides", nargs="*", help="Hydra overrides")

    probe = add("probe", "describe this Python image as JSON (stdlib-only), or one from a pip freeze list")
    probe.add_argument("--out", default=None, help="write the manifest here instead of stdout")
    probe.add_argument("--name", default=None, help="image name recorded in the manifest")
    probe.add_argument("--note", default=None, help="how the image was captured / can be recreated")
    probe.add_argument("--docker-image", default=None, help="the image's Docker reference (kernels pin it)")
    probe.add_argument(
        "--from-freeze",
        metavar="FILE",
        default=None,
        help="derive the manifest from `pip freeze` output instead (default --out: configs/images/NAME.json)",
    )
    probe.add_argument("--python", default=None, help="with --from-freeze: the image's Python, e.g. 3.12")
    probe.add_argument("--glibc", default=None, help="with --from-freeze: the image's glibc, e.g. 2.35")
    probe.add_argument("--offline", action="store_true", help="with --from-freeze: use only the cache")
    probe.add_argument(
        "overrides", nargs="*", help="with --from-freeze: overrides, e.g. bundle.index_url=URL"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "probe" and not args.from_freeze:  # the live probe stays stdlib-only
        import bundler.probe

        return int(bundler.probe.main(args))

    from bundler.output import console, render, render_error
    from spectramind.errors import SpectraMindError

    as_json = bool(getattr(args, "json", False))
    try:
        module = importlib.import_module(COMMANDS[args.command])
        result: Result = module.run(args)
    except SpectraMindError as error:
        render_error(error, command=args.command, as_json=as_json)
        return error.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    render(result, as_json=as_json)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
