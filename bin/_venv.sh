# Sourced by bin/demo.sh and bin/test.sh: make .venv with the project installed (idempotent).
# torch is pinned to the 2.13.0 CPU build first so nothing pulls a multi-GB CUDA build.
set -euo pipefail
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements.in | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade 'pip>=24.2'
  .venv/bin/python -m pip install --quiet 'torch==2.13.0'
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
