#!/usr/bin/env bash
# The main job on the embedded demo: install, make data, train, lock, build the bundle, run it in the
# offline Kaggle sandbox under a budget, score the submission. Extra arguments are Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bin/_venv.sh
. bin/_venv.sh
exec python -m bundler demo "$@"
