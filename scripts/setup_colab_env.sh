#!/usr/bin/env bash
# Create .venv-colab: what a Colab runtime gets from the book, i.e. only `pip install -e .`, plus
# the test runner (pytest, nbval, ipykernel). No dev extras, no jupyter-book, no myst-nb.
# Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv-colab/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating .venv-colab (pip install -e . + pytest, nbval, ipykernel)"
  rm -rf .venv-colab
  "$PYTHON" -m venv .venv-colab
  .venv-colab/bin/python -m pip install -q --upgrade pip
  .venv-colab/bin/python -m pip install -q -e . pytest nbval ipykernel
  echo "$want" > "$stamp"
fi
