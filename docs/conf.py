"""Sphinx configuration of gradtx's documentation (``sphinx-build -W -n docs docs/_build/html``).

Sphinx was chosen over MkDocs because its autodoc + napoleon read the Google-style docstrings that ``help()``
shows, unchanged, and because ``-n`` (nitpicky) with ``-W`` turns every unresolved cross-reference into a build
error, which is what keeps a reference of 700+ names honest. Notebooks are rendered by myst-nb from their
committed outputs (CI re-executes them separately, in tests/test_notebooks.py). The API pages are written from the
package's ``__all__`` lists (``_ext/gradtx_api.py``) and the optimizer gallery is computed by the build
(``_ext/gradtx_gallery.py``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")  # the gallery's many small compiles
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

import gradtx  # noqa: E402

project = "gradtx"
author = "the gradtx authors"
copyright = "2026, the gradtx authors"  # noqa: A001
release = version = getattr(gradtx, "__version__", "0.1.0")

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",
    "gradtx_api",
    "gradtx_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "furo"
html_title = "gradtx"
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["gradtx.css"]

# Notebooks: rendered from their committed, executed outputs.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# autodoc / napoleon: Google-style docstrings, signatures with their annotations as written.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_type_aliases = {
    name: f"gradtx.base.{name}"
    for name in ("Scalar", "ScalarOrSchedule", "Schedule", "Params", "Updates", "OptState", "PyTree", "ArrayTree",
                 "MaskOrFn", "Shape", "PRNGKey", "ScheduleState")
}

# Broken cross-references are errors (-n -W); names outside gradtx are not documented here, so references to
# them (type annotations naming JAX, NumPy, the standard library) are not checked.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|jnp|chex|optax|flax|orbax|matplotlib|collections|typing|typing_extensions|"
               r"dataclasses|enum|types|abc|builtins|os|pathlib)(\..*)?"),
    (r"py:.*", r"(Array|ArrayLike|DTypeLike|Any|Callable|Sequence|Mapping|Iterable|Iterator|NamedTuple|TypeVar|"
               r"Self|ClassVar|Literal|Protocol|Union|Optional|NoneType|None|Ellipsis|ParamSpec|P|T|_T|_P|"
               r"_ParamsT|.*\.args|.*\.kwargs|TypeAliasForwardRef|Axes|Figure|.*\._[A-Za-z]\w*)"),
    (r"py:class", r"(int|float|bool|str|complex|tuple|list|dict|set|frozenset|type|object|bytes|slice|Path)"),
]


def _copy_notebooks(app) -> None:
    """The lecture's notebooks and their figures, copied under the source tree (Sphinx reads only there)."""
    dst = Path(app.srcdir) / "lecture"
    dst.mkdir(exist_ok=True)
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        target = dst / nb.name
        if not target.exists() or target.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, target)


def _alias_names(app, what, name, obj, options, signature, return_annotation):
    """Show a type alias by its name in signatures: Sphinx prints an alias inside a union (``ScalarOrSchedule |
    None``) as ``TypeAliasForwardRef('gradtx.base.ScalarOrSchedule')``."""
    import re

    def clean(text):
        return None if text is None else re.sub(r"TypeAliasForwardRef\('([^']+)'\)", r"\1", text)

    return clean(signature), clean(return_annotation)


def setup(app):
    app.connect("builder-inited", _copy_notebooks)
    app.connect("autodoc-process-signature", _alias_names)
