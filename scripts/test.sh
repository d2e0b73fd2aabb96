#!/usr/bin/env bash
# The README's test command: unit tests + every notebook under nbval, in quick mode.
# Needs the real datasets: LAB_DATA defaults to ../shared/data when that folder exists.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
if [ -z "${LAB_DATA:-}" ] && [ -d ../shared/data ]; then export LAB_DATA=$(cd ../shared/data && pwd); fi
export LAB_QUICK=${LAB_QUICK:-1} TQDM_DISABLE=1 MPLBACKEND=Agg PYTHONHASHSEED=0
echo "== tests: LAB_DATA=${LAB_DATA:-data/ (default)} LAB_QUICK=$LAB_QUICK"
status=0
.venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
  --nbval-sanitize-with scripts/nbval_sanitize.cfg --nbval-cell-timeout=1200 \
  -p no:cacheprovider --durations=15 "$@" || status=$?
echo "== test time: $(( $(date +%s) - start )) s"
exit $status
