"""Write the repository URL of _config.yml (repository.url, repository.branch) into every
notebook's first cells: the Colab badge (first markdown cell) and the clone command (first code
cell, tagged remove-cell so that the rendered book does not show it). Outputs are left
untouched. A fork changes _config.yml and runs this script once.

Usage: python scripts/set_repo_url.py           # rewrite the notebooks
       python scripts/set_repo_url.py --check   # exit 1 if a notebook disagrees with _config.yml
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
SETUP_MARKER = "# On Colab: fetch the book's repository"
HIDE_TAG = "remove-cell"   # Jupyter Book leaves the cell out of the HTML; it stays in the notebook


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """(url, branch) from _config.yml, the URL without a trailing slash or .git."""
    repo = yaml.safe_load(config_path.read_text())["repository"]
    url = repo["url"].rstrip("/").removesuffix(".git")
    match = re.fullmatch(r"https://(github|gitlab)\.com/[\w.-]+/[\w.-]+", url)
    if not match:
        raise ValueError(f"repository.url in {config_path.name} must look like "
                         f"https://github.com/OWNER/REPO, got {url!r}")
    return url, repo.get("branch", "main")


def badge(url: str, branch: str, notebook: str) -> str:
    """The Colab badge that opens ``notebooks/<notebook>`` of the repository."""
    path = url.removeprefix("https://github.com/")
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook})")


def setup_cell(url: str, branch: str) -> str:
    """The first code cell: on Colab, clone (or update) the repository and install labutils."""
    folder = "/content/" + url.rsplit("/", 1)[-1]
    return "\n".join([
        f"{SETUP_MARKER} and install labutils (skipped elsewhere).",
        "import sys",
        'if "google.colab" in sys.modules:',
        f'    REPO_URL = "{url}"',
        f'    BRANCH, FOLDER = "{branch}", "{folder}"',
        "    !test -d {FOLDER} || git clone -q --depth 1 --branch {BRANCH} {REPO_URL} {FOLDER}",
        "    !git -C {FOLDER} pull -q --ff-only",
        "    %pip install -q -e {FOLDER}",
        "    sys.path.insert(0, FOLDER)",
    ])


def _first(cells: list[dict], cell_type: str) -> dict:
    return next(c for c in cells if c["cell_type"] == cell_type)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return lines[:-1] + [lines[-1].rstrip("\n")] if lines else []


def update(path: Path, url: str, branch: str, *, write: bool) -> list[str]:
    """Problems found in one notebook (fixed in place when ``write``)."""
    nb = json.loads(path.read_text())
    problems = []
    md, code = _first(nb["cells"], "markdown"), _first(nb["cells"], "code")
    md_text, want_badge = "".join(md["source"]), badge(url, branch, path.name)
    if BADGE.search(md_text) is None:
        problems.append(f"{path.name}: no Colab badge in the first markdown cell")
    elif BADGE.search(md_text).group(0) != want_badge:
        problems.append(f"{path.name}: Colab badge does not point to {url} ({branch})")
        md["source"] = _lines(BADGE.sub(lambda m: want_badge, md_text, count=1))
    code_text, want_code = "".join(code["source"]), setup_cell(url, branch)
    if not code_text.startswith(SETUP_MARKER):
        problems.append(f"{path.name}: the first code cell is not the Colab setup cell")
    elif code_text != want_code:
        problems.append(f"{path.name}: the Colab setup cell does not clone {url} ({branch})")
        code["source"] = _lines(want_code)
    tags = code.setdefault("metadata", {}).setdefault("tags", [])
    if code_text.startswith(SETUP_MARKER) and HIDE_TAG not in tags:
        problems.append(f"{path.name}: the Colab setup cell is not tagged {HIDE_TAG!r}")
        tags.append(HIDE_TAG)
    if write and problems:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return problems


def main(argv: list[str]) -> int:
    check = "--check" in argv
    url, branch = repository()
    problems = [p for path in sorted((ROOT / "notebooks").glob("*.ipynb"))
                for p in update(path, url, branch, write=not check)]
    for p in problems:
        print(("" if check else "updated: ") + p)
    return 1 if check and problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
