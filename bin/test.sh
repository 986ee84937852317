#!/usr/bin/env bash
# The test command: installs the project into .venv if needed, then lint, types and the whole suite
# (network tests included: they reach PyPI only). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bin/_venv.sh
. bin/_venv.sh
ruff check .
ruff format --check .
mypy
pytest "$@"
