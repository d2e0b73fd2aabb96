"""Open every chapter the way Colab does and run its opening cells there.

Colab gives a notebook nothing but its own Python packages: the notebook's first cell clones
the book's repository and runs `pip install -e` on it, and the chapter then imports labutils.
This check rebuilds that path on a machine without Colab:

- an environment made only by `pip install -e .` plus the test runner (pytest, nbval,
  ipykernel): no dev extras, no jupyter-book, no myst-nb (`.venv-colab`, made by
  scripts/test.sh);
- a stub `google.colab` module imported at interpreter start-up, so that the first cell takes
  its Colab branch;
- the first cell clones the repository from this checkout (its committed HEAD, as `file://`)
  into a temporary folder instead of GitHub into /content, runs it a second time to check that
  it is idempotent, then installs it;
- the setup and parameters cells then execute in quick mode under nbval.

Usage (from the repository root, inside .venv-colab): python scripts/colab_check.py [NOTEBOOK...]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPENING_CODE_CELLS = 3   # the Colab cell, the setup cell and the parameters cell

STUB = '''"""A stand-in for Colab's google.colab package: only its presence matters."""
'''


def opening(notebook: Path, repo_url: str, folder: Path) -> dict:
    """The notebook cut after its parameters cell, cloning from ``repo_url`` into ``folder``."""
    nb = json.loads(notebook.read_text())
    cells, code_seen = [], 0
    for cell in nb["cells"]:
        cells.append(cell)
        code_seen += cell["cell_type"] == "code"
        if code_seen == OPENING_CODE_CELLS:
            break
    colab = next(c for c in cells if c["cell_type"] == "code")
    source = "".join(colab["source"])
    if 'if "google.colab" in sys.modules:' not in source:
        raise SystemExit(f"{notebook.name}: the first code cell is not the Colab cell")
    source, n_url = re.subn(r'REPO_URL = "[^"]*"', f'REPO_URL = "{repo_url}"', source)
    source, n_dir = re.subn(r'FOLDER = "[^"]*", "[^"]*"',
                            f'FOLDER = "{current_branch()}", "{folder}"', source)
    if (n_url, n_dir) != (1, 1):
        raise SystemExit(f"{notebook.name}: cannot find REPO_URL / BRANCH, FOLDER in the Colab cell")
    # Run the cell twice: a second run on the same runtime must pull, not fail on the clone.
    colab["source"] = source + "\n" + source.split("\n", 1)[1]
    for cell in cells:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["cells"] = cells
    return nb


def current_branch() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--abbrev-ref", "HEAD"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return "main" if out == "HEAD" else out   # a detached CI checkout: the book's branch


def main(argv: list[str]) -> int:
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("myst-nb is importable here: run this check in the Colab-like "
                         "environment (.venv-colab), which has only `pip install -e .`")
    notebooks = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "stub" / "google" / "colab").mkdir(parents=True)
        (tmp / "stub" / "google" / "__init__.py").write_text("")
        (tmp / "stub" / "google" / "colab" / "__init__.py").write_text(STUB)
        (tmp / "stub" / "sitecustomize.py").write_text("import google.colab  # as on Colab\n")
        cut = tmp / "notebooks"
        cut.mkdir()
        for path in notebooks:
            nb = opening(path, ROOT.as_uri(), tmp / "content" / ROOT.name)
            (cut / path.name).write_text(json.dumps(nb, indent=1))
        env = dict(os.environ, LAB_QUICK="1", TQDM_DISABLE="1", MPLBACKEND="Agg",
                   PYTHONPATH=str(tmp / "stub"), PIP_DISABLE_PIP_VERSION_CHECK="1")
        print(f"== Colab-like check of {len(notebooks)} notebooks' opening cells "
              f"(clone of {ROOT.as_uri()} @ {current_branch()}, environment {sys.prefix})")
        return subprocess.run(
            [sys.executable, "-m", "pytest", str(cut), "--nbval-lax", "--nbval-current-env",
             "-p", "no:cacheprovider", "-q", "--nbval-cell-timeout=600"],
            cwd=cut, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
