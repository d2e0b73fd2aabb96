"""labutils.glue writes exactly what myst-nb's glue writes, with and without myst-nb installed."""

import builtins
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

from labutils import glue as glue_module
from labutils.glue import GLUE_PREFIX, glue


@pytest.fixture
def published(monkeypatch):
    """Capture what IPython's display publisher receives: a list of (data, metadata)."""
    shell = InteractiveShell.instance()
    seen = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, **kw: seen.append((data, metadata)))
    return seen


@pytest.fixture
def no_myst_nb(monkeypatch):
    """Make ``import myst_nb`` fail, as on Colab or after a plain ``pip install -e .``."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "myst_nb" or name.startswith("myst_nb."):
            raise ImportError("No module named 'myst_nb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "myst_nb", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)


@pytest.mark.parametrize("display", [True, False])
@pytest.mark.parametrize("value", ["98.53%", 0.25, [1, 2]])
def test_same_output_as_myst_nb(published, monkeypatch, value, display):
    from myst_nb import glue as myst_glue

    myst_glue("key", value, display=display)
    reference = published.pop()
    monkeypatch.setitem(sys.modules, "myst_nb", None)   # `from myst_nb import glue` now fails
    glue("key", value, display=display)
    assert published.pop() == reference
    data, metadata = reference
    assert metadata["scrapbook"]["name"] == "key"
    assert all(k.startswith(GLUE_PREFIX) for k in data) == (not display)


def test_without_myst_nb_records_the_value(published, no_myst_nb):
    glue("acc", "91.2%", display=False)
    data, metadata = published.pop()
    assert data == {GLUE_PREFIX + "text/plain": "'91.2%'"}
    assert metadata["scrapbook"] == {"name": "acc", "mime_prefix": GLUE_PREFIX}


def test_outside_ipython_prints_only_when_displayed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    glue("x", 3, display=False)
    assert capsys.readouterr().out == ""
    glue("x", 3)
    assert capsys.readouterr().out == "3\n"


def test_bad_name_is_an_error():
    with pytest.raises(ValueError, match="non-empty string"):
        glue("", 1)
    assert glue_module.glue is glue
