#!/usr/bin/env bash
# The README's test command: unit tests + every notebook under nbval, in quick mode.
# Needs the real datasets: LAB_DATA defaults to ../shared/data when that folder exists.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
if [ -z "${LAB_DATA:-}" ] && [ -d ../shared/data ]; then export LAB_DATA=$(cd ../shared/data && pwd); fi
# A relative LAB_DATA means relative to where the command was started; the notebook kernels run
# in notebooks/, so pass it on as an absolute path.
if [ -n "${LAB_DATA:-}" ] && [ -d "$caller/$LAB_DATA" ] && [ "${LAB_DATA#/}" = "$LAB_DATA" ]; then
  export LAB_DATA=$(cd "$caller/$LAB_DATA" && pwd)
fi
export LAB_QUICK=${LAB_QUICK:-1} TQDM_DISABLE=1 MPLBACKEND=Agg PYTHONHASHSEED=0
echo "== tests: LAB_DATA=${LAB_DATA:-data/ (default)} LAB_QUICK=$LAB_QUICK"
status=0
.venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env \
  --nbval-sanitize-with scripts/nbval_sanitize.cfg --nbval-cell-timeout=1200 \
  -p no:cacheprovider --durations=15 "$@" || status=$?
# The students' path: each notebook's opening cells in a Colab-like environment made only by
# `pip install -e .` plus the test runner (no dev extras, no jupyter-book, no myst-nb).
bash scripts/setup_colab_env.sh
.venv-colab/bin/python scripts/colab_check.py || status=1
# The rendered book, checked as a reader sees it: build it, then open every page in headless
# Chromium (scripts/check_book.py). Needs Debian's chromium + chromium-driver (.ci/run installs them).
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  bash scripts/build_book.sh >/tmp/cnn-lab-book-build.log 2>&1 \
    || { echo "== book build failed (log: /tmp/cnn-lab-book-build.log)"; status=1; }
  [ -f _build/html/index.html ] && { .venv/bin/python scripts/check_book.py || status=1; }
else
  echo "== browser check SKIPPED: chromium and chromium-driver are not installed" \
       "(apt-get install -y chromium chromium-driver)"
fi
echo "== test time: $(( $(date +%s) - start )) s"
exit $status
