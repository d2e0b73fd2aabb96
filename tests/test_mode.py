import pytest

from labutils.mode import RunMode, run_mode


@pytest.mark.parametrize("value,quick", [("", False), ("0", False), ("false", False),
                                         ("1", True), ("TRUE", True), ("yes", True)])
def test_run_mode_reads_lab_quick(monkeypatch, value, quick):
    monkeypatch.setenv("LAB_QUICK", value)
    assert run_mode().quick is quick


def test_run_mode_defaults_to_full(monkeypatch):
    monkeypatch.delenv("LAB_QUICK", raising=False)
    mode = run_mode()
    assert mode.name == "full" and str(mode) == "full"


def test_run_mode_rejects_typos(monkeypatch):
    monkeypatch.setenv("LAB_QUICK", "quik")
    with pytest.raises(ValueError, match="LAB_QUICK"):
        run_mode()


def test_choose_picks_by_mode():
    assert RunMode(quick=True).choose(full=10, quick=1) == 1
    assert RunMode(quick=False).choose(full=10, quick=1) == 10
