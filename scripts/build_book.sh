#!/usr/bin/env bash
# The README's book command: render the book from the committed notebook outputs (offline,
# nothing is executed). Result: _build/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf _build/html   # no pages left over from files that are no longer part of the book
.venv/bin/jupyter-book build --all . "$@"
echo "== book: $(pwd)/_build/html/index.html"
