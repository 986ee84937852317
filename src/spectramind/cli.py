"""``spectramind COMMAND [OPTIONS] [OVERRIDES...]``: the run-side command line.

Each command lives in its own module exposing ``main(argv) -> int`` and parses its arguments with
`command_parser`; modules are imported only when their command runs (torch is heavy, ``test`` must
work before anything else is installed). Every failure, usage errors and operating-system errors
included, is shown as what/where/fix on stderr and, with ``--json``, as one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import NoReturn

from spectramind import __version__
from spectramind.errors import CommandLineError, SpectraMindError, in_family

# command -> (module, one-line help, examples)
COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "make-data": (
        "spectramind.synth",
        "write a synthetic Ariel-format dataset (deterministic by seed)",
        ("make-data", "make-data data=nominal data.seed=7", "make-data --json +env=ci"),
    ),
    "train": (
        "spectramind.train",
        "train the spectrum model; writes weights/",
        ("train", "train model.epochs=50 --json", "train +env=kaggle +data=nominal +model=v50"),
    ),
    "predict": (
        "spectramind.predict",
        "write submission.csv (budget-aware, incremental)",
        ("predict", "predict env=kaggle", "predict predict.mode=calibration --json"),
    ),
    "score": (
        "spectramind.score",
        "score a submission against ground truth",
        ("score --json", "score --submission outputs/submission.csv --truth data/demo/test_labels.csv"),
    ),
    "test": (
        "spectramind.selftest",
        "self-test of the environment (Python, platform, CUDA, mounts, bundle)",
        ("test", "test --json env=kaggle"),
    ),
}
MULTIRUN_FLAGS = ("--multirun", "-m")
OVERRIDES_HELP = (
    "configuration overrides, before or after the options: group=option (env=kaggle), "
    "key=value (data.seed=7), +group=option or +key=value, ~key removes one"
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors join the error family: exit 2, and one JSON object with --json."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message, where=self.format_usage().strip(), fix=f"{self.prog} --help")


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command: ``--json``, its overrides, help with examples (modules add options)."""
    _, help_, examples = COMMANDS[name]
    parser = _Parser(
        prog=f"spectramind {name}",
        description=help_,
        epilog="examples:\n" + "\n".join(f"  spectramind {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        *MULTIRUN_FLAGS,
        action="store_true",
        help="one Slurm job per run of the sweep (seed=1,2,3); needs env=hpc",
    )
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help=OVERRIDES_HELP)
    return parser


def _usage() -> str:
    lines = ["usage: spectramind [--help] [--version] COMMAND [OPTIONS] [OVERRIDES...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_, _) in COMMANDS.items()]
    lines += [
        "",
        f"overrides: {OVERRIDES_HELP}.",
        "Run 'spectramind COMMAND --help' for its options and examples.",
    ]
    return "\n".join(lines)


def _fail(error: SpectraMindError, command: str | None, *, as_json: bool) -> int:
    if as_json:
        payload = {"command": command, "ok": False, **error.to_json()}
        sys.stdout.write(json.dumps(payload, sort_keys=True) + "\n")
        sys.stdout.flush()
    print(f"ERROR {error.render()}", file=sys.stderr)
    return error.exit_code


def _dispatch(args: list[str]) -> int:
    if args and args[0] in {"-h", "--help"}:
        print(_usage(), file=sys.stderr)
        return 0
    if args and args[0] == "--version":
        print(f"spectramind {__version__}")
        return 0
    if not args or args[0] not in COMMANDS:
        raise CommandLineError(
            f"unknown command '{args[0]}'" if args else "no command given",
            where="spectramind " + " ".join(args),
            fix=f"spectramind --help; the commands are {', '.join(COMMANDS)}",
        )
    if any(flag in args[1:] for flag in MULTIRUN_FLAGS):
        from spectramind import hpc  # one Slurm job per run, through Hydra's launcher

        return hpc.main(args[0], args[1:])
    module = importlib.import_module(COMMANDS[args[0]][0])
    return int(module.main(args[1:]))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = args[0] if args and args[0] in COMMANDS else None
    try:
        return _dispatch(args)
    except (Exception, KeyboardInterrupt) as exc:
        failure = in_family(exc, "spectramind " + " ".join(args))
        if failure is None:
            raise
        return _fail(failure, name, as_json="--json" in args)


if __name__ == "__main__":
    sys.exit(main())
