"""``glue``: record a value in a notebook's output so that the book's text can quote it.

Jupyter Book pastes a glued value into the prose (``{glue:text}`name```) from the stored
output of the cell that glued it. ``myst_nb.glue`` does that, but myst-nb is a book-building
package that ``pip install -e .`` (and Colab) does not install. This helper uses myst-nb's own
``glue`` when it is importable and otherwise writes the same output itself: a display-data
output whose MIME types carry myst-nb's ``application/papermill.record/`` prefix (when
``display=False``) and whose metadata names the value. Outside IPython it prints the value when
``display`` is true and does nothing otherwise.
"""

from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"   # the prefix myst-nb looks for


def _glue_without_myst_nb(name: str, variable: Any, display: bool) -> None:
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:   # a plain Python process
        if display:
            print(variable)
        return
    mimebundle, metadata = format_display_data(variable)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


def glue(name: str, variable: Any, display: bool = True) -> None:
    """Record ``variable`` under ``name`` for the book's ``{glue}`` roles (myst-nb's format)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"glue needs a non-empty string name, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        _glue_without_myst_nb(name, variable, display)
    else:
        myst_glue(name, variable, display=display)
