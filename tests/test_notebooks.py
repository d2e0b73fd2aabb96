"""The committed notebooks follow the book's rules: executed top to bottom, no errors,
no machine-local paths, listed in the table of contents, ending with a run report."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_in_order_without_errors(path):
    cells = code_cells(path)
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{path.name}: commit it executed (bash scripts/execute.sh {path.name})"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), f"{path.name}: run top to bottom in a fresh kernel"
    errors = [i for i, c in enumerate(cells) if any(o["output_type"] == "error" for o in c["outputs"])]
    assert not errors, f"{path.name}: error outputs in code cells {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_local_paths(path):
    found = re.findall(r"/(?:work|tmp|root|home)/[\w.-]+/", path.read_text())
    assert not found, f"{path.name} contains machine-local paths: {sorted(set(found))[:3]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_listed_in_toc_and_ends_with_run_report(path):
    assert f"notebooks/{path.stem}" in (ROOT / "_toc.yml").read_text(), f"{path.name} is not in _toc.yml"
    last = "".join(code_cells(path)[-1]["source"])
    assert "run.report(" in last, f"{path.name}: the last code cell should print the run report"
    assert any("NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code_cells(path)), \
        f"{path.name}: no deterministic output is checked by nbval"
