#!/usr/bin/env bash
# SpectraMind V50 boot on Kaggle (DESIGN §6). Shipped as <bundle>/boot/kaggle-boot.sh.
#
#   bash /kaggle/input/<bundle>/boot/kaggle-boot.sh [COMMAND...]   # default: spectramind predict env=kaggle
#
# 1. record the start time (the budget counts from here unless the kernel set SPECTRAMIND_BOOT_START
#    earlier), 2. export the determinism environment before any Python starts, 3. find the bundle,
# 4. hand over to the stdlib shim in boot/shim/ (verify, activate the installed delta, fallback submission,
#    budgeted run, records).
# Knobs: SPECTRAMIND_INPUT (/kaggle/input), SPECTRAMIND_OUTPUT (/kaggle/working), SPECTRAMIND_BUDGET_S,
# SPECTRAMIND_SAFETY_MARGIN_S, SPECTRAMIND_PYTHON (python3), SPECTRAMIND_THREADS, SPECTRAMIND_SEED.
set -euo pipefail

if [[ -z "${SPECTRAMIND_BOOT_START:-}" ]]; then
  SPECTRAMIND_BOOT_START="${EPOCHREALTIME:-$(date +%s)}"
fi
export SPECTRAMIND_BOOT_START="${SPECTRAMIND_BOOT_START/,/.}"   # EPOCHREALTIME follows the locale

# Determinism: fixed hash seed, deterministic cuBLAS workspace, bounded thread pools.
threads="${SPECTRAMIND_THREADS:-4}"
export PYTHONHASHSEED="${PYTHONHASHSEED:-${SPECTRAMIND_SEED:-1337}}"
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$threads}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$threads}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$threads}"
export NUMEXPR_NUM_THREADS="${NUMEXPR_NUM_THREADS:-$threads}"

export PYTHONUNBUFFERED=1

input_dir="${SPECTRAMIND_INPUT:-/kaggle/input}"
export SPECTRAMIND_INPUT="$input_dir"
export SPECTRAMIND_OUTPUT="${SPECTRAMIND_OUTPUT:-/kaggle/working}"

# The bundle: the one this script lives in, else a glob over the layouts Kaggle has used
# (/kaggle/input/<slug>, one folder deeper, and /kaggle/input/datasets/<owner>/<slug>).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bundle=""
if [[ -f "$here/../MANIFEST.json" && -f "$here/shim/main.py" ]]; then
  bundle="$(cd "$here/.." && pwd)"
else
  shopt -s nullglob
  for candidate in "$input_dir"/*/boot/shim/main.py "$input_dir"/*/*/boot/shim/main.py "$input_dir"/datasets/*/*/boot/shim/main.py; do
    root="$(cd "$(dirname "$candidate")/../.." && pwd)"
    if [[ -f "$root/MANIFEST.json" ]]; then
      bundle="$root"
      break
    fi
  done
  shopt -u nullglob
fi
if [[ -z "$bundle" ]]; then
  echo "ERROR no SpectraMind bundle found" >&2
  echo "  where: $input_dir/{*,*/*,datasets/*/*}/boot/shim/main.py" >&2
  echo "  fix:   attach the bundle dataset to the kernel, or set SPECTRAMIND_INPUT" >&2
  exit 1
fi

python="${SPECTRAMIND_PYTHON:-python3}"
if [[ $# -eq 0 ]]; then
  set -- spectramind predict env=kaggle
fi
# -B: the bundle is read-only, so the shim itself writes no bytecode next to it. The shim is a package
# of stdlib modules (boot/shim/) that import each other relatively: put boot/ on sys.path, run main.
# shellcheck disable=SC2016  # $-free Python source, single-quoted on purpose
exec "$python" -B -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); from shim.main import main; sys.exit(main())' \
  "$bundle/boot" --bundle "$bundle" -- "$@"
