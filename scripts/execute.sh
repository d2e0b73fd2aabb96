#!/usr/bin/env bash
# Execute notebooks in place, top to bottom in a fresh kernel, for committing their outputs.
# Full mode unless LAB_QUICK=1 is set. Usage: bash scripts/execute.sh notebooks/03_digits.ipynb
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${LAB_DATA:-}" ] && [ -d ../shared/data ]; then export LAB_DATA=$(cd ../shared/data && pwd); fi
# A relative LAB_DATA means relative to where the command was started; the notebook kernels run
# in notebooks/, so pass it on as an absolute path.
if [ -n "${LAB_DATA:-}" ] && [ -d "$caller/$LAB_DATA" ] && [ "${LAB_DATA#/}" = "$LAB_DATA" ]; then
  export LAB_DATA=$(cd "$caller/$LAB_DATA" && pwd)
fi
export TQDM_DISABLE=1 MPLBACKEND=module://matplotlib_inline.backend_inline PYTHONHASHSEED=0
for nb in "$@"; do
  echo "== executing $nb (mode: $([ "${LAB_QUICK:-}" = 1 ] && echo quick || echo full))"
  t0=$(date +%s)
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$nb"
  echo "   done in $(( $(date +%s) - t0 )) s"
done
