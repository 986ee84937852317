"""``python -m bundler``: build, check and push the Kaggle-offline bundle of SpectraMind V50.

One parser, one error sink: every failure, usage errors and operating-system errors included, is
shown as what/where/fix on stderr and, with ``--json``, as one JSON object on stdout.
Command modules are imported only when their command runs, so ``probe`` stays stdlib-only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from spectramind import __version__
from spectramind.errors import SpectraMindError, in_family

if TYPE_CHECKING:
    from bundler.output import Result

PROG = "python -m bundler"
# command -> module with `run(args) -> Result`
COMMANDS = {
    "lock": "bundler.commands.lock",
    "build": "bundler.commands.build",
    "verify": "bundler.commands.verify",
    "simulate": "bundler.commands.simulate",
    "push": "bundler.commands.push",
    "pull-weights": "bundler.commands.pull_weights",
    "demo": "bundler.commands.demo",
    "parity": "bundler.commands.parity",
    "docker-context": "bundler.commands.docker_context",
    "probe": "bundler.freeze",  # probe --from-freeze; the live probe runs before any import (stdlib-only)
}
OVERRIDES_HELP = (
    "configuration overrides, before or after the options: group=option (env=kaggle), "
    "key=value (bundle.out=DIR), +key=value adds a key, ~key removes one"
)
_EXAMPLES = {
    "lock": ["lock", "lock --check", "lock target=ariel2025-cp311"],
    "build": ["build", "build --offline --json", "build env=kaggle bundle.out=dist/bundle"],
    "verify": ["verify dist/bundle", "verify dist/bundle --json"],
    "simulate": ["simulate dist/bundle --budget 600", "simulate dist/bundle --json env=kaggle"],
    "push": [
        "push dist/bundle --dry-run",
        "push dist/bundle --wait --json",
        "push dist/bundle --kernel spectramind-v50-train --wait",
    ],
    "pull-weights": ["pull-weights", "pull-weights --kernel myname/spectramind-v50-train --json"],
    "demo": ["demo", "demo --budget 60 env.seed=1337"],
    "parity": [
        "parity",
        "parity --profiles default,ci --json",
        "parity --profiles default,ci,kaggle --submission docker=outputs/parity-docker/submission.csv",
    ],
    "docker-context": ["docker-context", "docker-context --out dist/docker --json"],
    "probe": [
        "probe --out configs/images/my-image.json --name my-image --note 'Kaggle GPU image'",
        "probe --from-freeze freeze.txt --name my-image --python 3.12 --glibc 2.35",
    ],
}


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors join the error family: exit 2, and one JSON object with --json."""

    def error(self, message: str) -> NoReturn:
        from bundler.errors import UsageError

        raise UsageError(message, where=self.format_usage().strip(), fix=f"{self.prog} --help")


def _epilog(name: str) -> str:
    return "examples:\n" + "\n".join(f"  {PROG} {line}" for line in _EXAMPLES[name])


def _parity_arguments(parity: _Parser) -> None:
    parity.add_argument(
        "--profiles",
        default="default,ci,docker,kaggle",
        help="comma-separated, or none; the first submission is the reference",
    )
    parity.add_argument("--out", default=None, help="working folder (default: outputs/parity)")
    parity.add_argument("--budget", type=float, default=600.0, help="sandbox time budget (kaggle profile)")
    parity.add_argument(
        "--submission",
        action="append",
        metavar="NAME=PATH",
        help="also compare a submission made elsewhere (e.g. in the docker container); repeatable",
    )
    parity.add_argument(
        "overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP + "; passed to every step"
    )


def _kaggle_commands(add: Callable[[str, str], _Parser]) -> None:
    """push and pull-weights: the commands that talk to Kaggle."""
    push = add("push", "push the bundle dataset and kernels through the Kaggle API")
    push.add_argument("bundle_dir", metavar="BUNDLE_DIR", help="the bundle directory build wrote")
    push.add_argument(
        "--kernels",
        default=None,
        help="kernel folders (default: the ones build wrote beside the bundle, BUNDLE_DIR/../kernels)",
    )
    push.add_argument(
        "--kernel",
        action="append",
        metavar="NAME",
        help="push only this kernel (folder name or slug; repeat for several); default: all",
    )
    push.add_argument("--wait", action="store_true", help="wait for kernels to finish; fetch outputs")
    push.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    push.add_argument("--submit", action="store_true", help="submit the finished kernel version")
    push.add_argument("--timeout", type=float, default=3600.0, help="overall wait limit in seconds")

    pull = add(
        "pull-weights",
        "fetch the training kernel's weights through the Kaggle API, check them, place them at "
        "model.weights and `dvc add` them (the next build packs them)",
    )
    pull.add_argument(
        "--kernel",
        default=None,
        metavar="REF",
        help="the training kernel, owner/slug (default: <bundle.dataset owner>/spectramind-v50-train)",
    )
    pull.add_argument("--timeout", type=float, default=3600.0, help="overall wait limit in seconds")
    pull.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)


def _parsers() -> tuple[_Parser, dict[str, _Parser]]:
    top = _Parser(
        prog=PROG,
        description="Build, check and push the Kaggle-offline bundle of SpectraMind V50.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options and examples.",
    )
    top.add_argument("--version", action="version", version=f"{PROG} (spectramind {__version__})")
    sub = top.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (each command has --help)"
    )
    commands: dict[str, _Parser] = {}

    def add(name: str, help_: str, *, common: bool = True) -> _Parser:
        cmd = sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        assert isinstance(cmd, _Parser)  # noqa: S101 -- add_parser uses the parent's class
        if common:
            cmd.add_argument("--json", action="store_true", help="print one JSON object on stdout")
            cmd.add_argument("--config-dir", default=None, help="configs directory (default: ./configs)")
        commands[name] = cmd
        return cmd

    lock = add("lock", "resolve requirements.in into a hash-locked requirements.lock for the target")
    lock.add_argument(
        "--in", dest="req_in", default=None, help="requirements.in (default: bundle.requirements_in)"
    )
    lock.add_argument("--out", default=None, help="lock file to write (default: bundle.lock)")
    lock.add_argument("--check", action="store_true", help="fail if the lock is out of date; write nothing")
    lock.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)

    build = add("build", "build the Kaggle dataset bundle (wheelhouse, project wheel, configs, weights)")
    _lock_and_out(
        build, "bundle directory (default: bundle.out); kernel folders go beside it, to OUT/../kernels"
    )
    build.add_argument("--offline", action="store_true", help="use only the local wheel cache")
    build.add_argument("--allow-clobber", action="store_true", help="build even if image packages break")
    build.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)

    verify = add("verify", "recompute every hash of a bundle against its MANIFEST.json")
    verify.add_argument("bundle_dir", metavar="BUNDLE_DIR", help="the bundle directory build wrote")

    simulate = add("simulate", "boot a bundle offline in the local Kaggle sandbox")
    simulate.add_argument("bundle_dir", metavar="BUNDLE_DIR", help="the bundle directory build wrote")
    simulate.add_argument("--data", default=None, help="competition data to mount (default: data.root)")
    simulate.add_argument("--budget", type=float, default=None, help="time budget in seconds")
    simulate.add_argument("--out", default=None, help="where /kaggle/working ends up")
    simulate.add_argument("--command", dest="run_command", default=None, help="command to boot")
    simulate.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)

    _kaggle_commands(add)

    demo = add("demo", "main job on the embedded demo: data, train, lock, build, simulate, score")
    demo.add_argument("--budget", type=float, default=600.0, help="sandbox time budget in seconds")
    demo.add_argument(
        "overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP + "; passed to every step"
    )

    _parity_arguments(
        add("parity", "run each profile on a small dataset; compare the submissions byte for byte")
    )
    _add_docker_context(add("docker-context", "prepare dist/docker: the wheels the Dockerfile installs"))

    from bundler.probe import add_arguments

    probe = add(
        "probe",
        "describe this Python image as JSON (run it in a Kaggle kernel), or one from a pip freeze list",
    )
    add_arguments(probe)
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
        "overrides", nargs="*", metavar="OVERRIDE", help="with --from-freeze: " + OVERRIDES_HELP
    )
    return top, commands


def _lock_and_out(cmd: _Parser, out_help: str) -> None:
    """--lock and --out, as build and docker-context take them."""
    cmd.add_argument("--lock", default=None, help="lock file (default: bundle.lock)")
    cmd.add_argument("--out", default=None, help=out_help)


def _add_docker_context(cmd: _Parser) -> None:
    _lock_and_out(cmd, "context directory (default: dist/docker)")
    cmd.add_argument(
        "--torch-index",
        metavar="URL",
        default=None,
        help="also put torch's CPU build (the lock's version, +cpu) in the image, from this index "
        "(https://download.pytorch.org/whl/cpu), pinned by the sha256 the index publishes",
    )
    cmd.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line; options and overrides may come in any order (argparse's intermixed parsing)."""
    top, commands = _parsers()
    if argv and argv[0] in commands:
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
        return args
    return top.parse_args(argv)  # --help, --version, or an error that lists the commands


def _fail(error: SpectraMindError, command: str | None, *, as_json: bool) -> int:
    from bundler.output import render_error

    render_error(error, command=command, as_json=as_json)
    return error.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        args = parse(argv)
        if args.command == "probe" and not args.from_freeze:  # the live probe: no third-party import
            import bundler.probe

            return int(bundler.probe.main(args))
        module = importlib.import_module(COMMANDS[args.command])
        result: Result = module.run(args)
    except (Exception, KeyboardInterrupt) as exc:
        failure = in_family(exc, f"{PROG} {' '.join(argv)}")
        if failure is None:
            raise
        return _fail(failure, command, as_json=as_json)
    from bundler.output import render

    render(result, as_json=as_json)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
