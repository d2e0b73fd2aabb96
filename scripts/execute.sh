#!/usr/bin/env bash
# Execute notebooks in place, top to bottom in a fresh kernel, for committing their outputs.
# Full mode unless LAB_QUICK=1 is set. Usage: bash scripts/execute.sh notebooks/03_digits.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${LAB_DATA:-}" ] && [ -d ../shared/data ]; then export LAB_DATA=$(cd ../shared/data && pwd); fi
export TQDM_DISABLE=1 MPLBACKEND=module://matplotlib_inline.backend_inline PYTHONHASHSEED=0
for nb in "$@"; do
  echo "== executing $nb (mode: $([ "${LAB_QUICK:-}" = 1 ] && echo quick || echo full))"
  t0=$(date +%s)
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$nb"
  echo "   done in $(( $(date +%s) - t0 )) s"
done
