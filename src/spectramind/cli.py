"""``spectramind <command> [overrides]``: the run-side command line (DESIGN §4).

Each command lives in its own module exposing ``main(argv) -> int``; modules are imported only
when their command runs (torch is heavy, ``test`` must work before anything else is installed).
"""

from __future__ import annotations

import importlib
import sys

from spectramind.errors import SpectraMindError

COMMANDS = {
    "make-data": ("spectramind.synth", "write a synthetic Ariel-format dataset (deterministic by seed)"),
    "train": ("spectramind.train", "train the spectrum model; writes weights/"),
    "predict": ("spectramind.predict", "write submission.csv (budget-aware, incremental)"),
    "score": ("spectramind.score", "score a submission against ground truth"),
    "test": ("spectramind.selftest", "self-test of the environment (Python, platform, CUDA, mounts, bundle)"),
}


def _usage() -> str:
    lines = ["usage: spectramind COMMAND [OVERRIDES...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "overrides are Hydra's: env=kaggle data=nominal model=v50 (or +env=kaggle)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(_usage(), file=sys.stderr)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"spectramind: unknown command '{name}'\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        code: int = module.main(rest)
    except SpectraMindError as error:
        print(f"ERROR {error.render()}", file=sys.stderr)
        return error.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
