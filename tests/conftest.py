"""Shared fixtures. Data tests read the real datasets under $LAB_DATA (CI: ../shared/data).

Also prints, at the end of a run that included notebooks, each notebook's time under nbval
(all its cells, kernel start included), so that quick mode's cost per chapter is visible.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

from labutils.data import data_root


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path_factory, monkeypatch):
    """Caches and run reports go to a temporary folder, never into the repository."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("LAB_CACHE", str(base / "cache"))
    monkeypatch.setenv("LAB_RUNS", str(base / "runs"))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def real_data():
    """The data root holding the real datasets; fails loudly if they are not there."""
    root = data_root()
    if not (root / "MNIST" / "raw").is_dir():
        pytest.fail(f"the real datasets are not under {root}: set LAB_DATA (e.g. "
                    f"LAB_DATA=../shared/data) before running the tests")
    return root


def pytest_terminal_summary(terminalreporter):
    """Each notebook's total time under nbval (setup, call and teardown of all its cells)."""
    seconds = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if ".ipynb::" in nodeid:
                seconds[nodeid.split("::")[0]] += getattr(report, "duration", 0.0)
    if seconds:
        terminalreporter.section("notebook times (nbval)")
        for notebook, total in sorted(seconds.items()):
            terminalreporter.write_line(f"{total:7.1f} s  {notebook}")
