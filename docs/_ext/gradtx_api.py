"""Sphinx extension: write the API reference pages from the package's ``__all__`` lists before reading sources.

Every public function and class (the names of a public module's ``__all__``, the same rule as
``tests/docrules.py``) gets exactly one entry, under its shortest public dotted name (``gradtx.adam``, not
``gradtx.optimizers.classic.adam``), on the page of the part of the package that defines it. A name no page
claims fails the build, so a new module cannot go undocumented.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

# (page, title, intro, defining-module prefixes). The first page whose prefix matches the defining module wins.
PAGES = [
    ("protocol", "The protocol and type aliases",
     "The ``(init, update)`` protocol, the base class every block subclasses, and the tools to write a block.",
     ("gradtx.base", "gradtx.fields", "gradtx._structure", "gradtx.namespace", "gradtx._docs")),
    ("blocks", "Building blocks", "One transformation per concept; optimizers are chains of these.",
     ("gradtx.transforms",)),
    ("optimizers", "Optimizers", "Named recipes: each one ``chain`` of blocks.", ("gradtx.optimizers",)),
    ("combinators", "Combinators", "N transformations to one: chain, partition, masked, ...", ("gradtx.combine",)),
    ("wrappers", "Wrappers", "One transformation around another: accumulation, finiteness guards, injection, ...",
     ("gradtx.wrappers",)),
    ("schedules", "Schedules", "Step count to value: decay, warm-up, cycles, joins.", ("gradtx.schedules",)),
    ("losses", "Losses", "Optax's loss functions, same names and numbers.", ("gradtx.losses",)),
    ("tree", "Tree utilities", "Pytree arithmetic and the leaf-precision vocabulary.", ("gradtx.tree",)),
    ("diagnostics", "Diagnostics", "Metrics in the state, curvature probes, plateau diagnosis, spike guards.",
     ("gradtx.diagnostics",)),
    ("contrib", "Research optimizers (contrib)", "Optax's ``contrib`` namespace and more, cross-checked against "
     "the authors' code.", ("gradtx.contrib",)),
    ("scale", "Sharding, the flat path and precision",
     "Sharded parameters, the flat multi-tensor path, precision policies and numerics.",
     ("gradtx.sharding", "gradtx.flat", "gradtx.precision", "gradtx.quantized", "gradtx.kernels", "gradtx.numerics",
      "gradtx.step")),
    ("other", "Projections, perturbations, microbatching and more",
     "The rest of Optax's namespaces, and checkpoints and plots.",
     ("gradtx.projections", "gradtx.perturbations", "gradtx.assignment", "gradtx.microbatching",
      "gradtx.second_order", "gradtx.experimental", "gradtx.checkpoint", "gradtx.plot", "gradtx.demo",
      "gradtx.bench")),
    ("testing", "Testing your optimizer", "Contracts, test problems and the float64 NumPy references.",
     ("gradtx.testing",)),
]


def public_modules() -> dict[str, object]:
    import gradtx

    mods: dict[str, object] = {"gradtx": gradtx}
    for info in pkgutil.walk_packages(gradtx.__path__, "gradtx."):
        if any(p.startswith("_") for p in info.name.split(".")[1:]):
            continue
        mods[info.name] = importlib.import_module(info.name)
    return mods


def public_entries() -> dict[int, tuple[str, str, object]]:
    """``id -> (public dotted name, defining module, object)``, the shortest public name for each object."""
    found: dict[int, tuple[str, str, object]] = {}
    for modname, mod in public_modules().items():
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            home = getattr(obj, "__module__", "") or ""
            if not home.startswith("gradtx"):
                continue
            dotted = f"{modname}.{name}"
            old = found.get(id(obj))
            if old is None or (dotted.count("."), dotted) < (old[0].count("."), old[0]):
                found[id(obj)] = (dotted, home, obj)
    return found


def public_constants() -> dict[int, tuple[str, str, object]]:
    """``id -> (public dotted name, module listing it, value)`` for the constants in public ``__all__`` lists."""
    found: dict[int, tuple[str, str, object]] = {}
    for modname, mod in public_modules().items():
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if inspect.ismodule(obj) or callable(obj) or obj is None:
                continue
            dotted = f"{modname}.{name}"
            old = found.get(id(obj))
            if old is None or (dotted.count("."), dotted) < (old[0].count("."), old[0]):
                found[id(obj)] = (dotted, modname, obj)
    return found


def page_of(home: str) -> str:
    for page, _title, _intro, prefixes in PAGES:
        if home.startswith(prefixes):
            return page
    raise RuntimeError(f"gradtx_api: no API page claims names defined in {home}; add its prefix to PAGES")


ALIASES = {
    "Scalar": "A number: a Python ``float`` or ``int``, a NumPy scalar or array, a JAX array "
              "(``jax.typing.ArrayLike``). Strings and ``None`` are not numbers.",
    "ScalarOrSchedule": "A number (:data:`Scalar`) or a schedule: a callable of the 0-based step count returning a "
                        "number, such as every ``gradtx`` schedule.",
    "Schedule": "A callable ``count -> value`` of the 0-based step count.",
    "Params": "A pytree of parameter arrays (any nesting of dicts, lists, tuples and pytree nodes).",
    "Updates": "A pytree of updates (or gradients) with the parameters' structure.",
    "OptState": "An optimizer state: a pytree of arrays whose structure ``init`` fixes.",
    "PyTree": "Any pytree.",
    "ArrayTree": "An array, or nested lists, tuples, dicts and pytree nodes of arrays.",
    "MaskOrFn": "``None``, a pytree of booleans (or a prefix of one), or a function ``params -> such a pytree``.",
    "Shape": "A sequence of ``int`` (an array shape).",
    "PRNGKey": "A JAX random key (``jax.Array``).",
    "ScheduleState": "The state of a stateful schedule.",
}


def _parses_cleanly(text: str) -> bool:
    import io

    from docutils.core import publish_doctree
    from docutils.utils import SystemMessage

    try:
        quiet = {"report_level": 5, "halt_level": 2, "warning_stream": io.StringIO()}
        doctree = publish_doctree(text, settings_overrides=quiet)
    except SystemMessage:
        return False
    return not any(n.tagname == "system_message" for n in doctree.traverse())


def _summary_cell(obj: object) -> str:
    """The first line of a docstring for the summary table: roles made literals (the table has no module
    context to resolve short names), a trailing ``::`` made ``:``; text that is not valid inline RST is escaped."""
    doc = (inspect.getdoc(obj) or "").strip().split("\n", 1)[0]
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"``\1``", doc)
    if doc.endswith("::"):
        doc = doc[:-1]
    if _parses_cleanly(doc):
        return doc
    return re.sub(r"([\\`*|_\[\]])", r"\\\1", doc)


def write_pages(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    by_page: dict[str, list[tuple[str, object]]] = {p[0]: [] for p in PAGES}
    for dotted, home, obj in public_entries().values():
        by_page[page_of(home)].append((dotted, obj))
    constants: dict[str, list[tuple[str, object]]] = {p[0]: [] for p in PAGES}
    for dotted, modname, obj in public_constants().values():
        constants["protocol" if modname == "gradtx" else page_of(modname)].append((dotted, obj))
    modules = public_modules()
    index = ["API reference", "=============", "", ".. toctree::", "   :maxdepth: 1", ""]
    for page, title, intro, prefixes in PAGES:
        entries = sorted(by_page[page], key=lambda e: e[0].lower())
        lines = [title, "=" * len(title), "", intro, ""]
        summary = [".. list-table::", "   :widths: 35 65", ""]
        for dotted, obj in entries:
            doc = _summary_cell(obj)
            role = "class" if inspect.isclass(obj) else "func"
            summary += [f"   * - :{role}:`~{dotted}`", f"     - {doc}"]
        lines += [*summary, ""]
        if page == "protocol":
            lines += ["Type aliases", "------------", "",
                      "Used in signatures; all live in ``gradtx.base`` (most are also exported by ``gradtx``).", ""]
            for alias, text in ALIASES.items():
                lines += [f".. py:type:: gradtx.base.{alias}", "", f"   {text}", ""]
        mods = [m for m in sorted(modules) if (m == "gradtx" and page == "protocol")
                or m.startswith(prefixes)]
        if mods:
            lines += ["Modules", "-------", ""]
            for m in mods:
                # The module docstring as help() shows it (aligned plain-text tables, formulas): verbatim.
                text = inspect.getdoc(modules[m]) or ""
                lines += [f".. py:module:: {m}", "", f"``{m}``", "", "::", ""]
                lines += [f"   {ln}" if ln.strip() else "" for ln in text.split("\n")] + [""]
        if constants[page]:
            lines += ["Constants", "---------", ""]
            for dotted, obj in sorted(constants[page], key=lambda e: e[0]):
                value = repr(obj)
                value = value if len(value) <= 300 else value[:297] + "..."
                lines += [f".. py:data:: {dotted}", f"   :value: {value}", ""]
        lines += ["Reference", "---------", ""]
        for dotted, obj in entries:
            directive = "autoclass" if inspect.isclass(obj) else "autofunction"
            lines += [f".. {directive}:: {dotted}", ""]
        text = "\n".join(lines)
        path = out / f"{page}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        index.append(f"   {page}")
    (out / "index.rst").write_text("\n".join(index) + "\n")
    return sum(len(v) for v in by_page.values())


def _on_builder_inited(app) -> None:
    n = write_pages(Path(app.srcdir) / "api")
    print(f"gradtx_api: {n} public names written to api/")


def _import_object(dotted: str) -> object | None:
    """The object a dotted name denotes (a module attribute chain), or None when nothing has that name."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_DOCUMENTED: dict[int, str] = {}


def _resolve(app, env, node, contnode):
    """Resolve a Python reference Sphinx could not: the name is looked up as Python would (relative to the
    module and class where it is written, else absolute), and

    - if that object is documented under another name (``gradtx.combine.partition`` is documented as
      ``gradtx.partition``; ``:func:`debias``` in a module that imports it), the reference links there;
    - if it exists but is not part of the documented API (a private helper), it is shown as code, unlinked;
    - if no such object exists, it stays unresolved: with ``-n -W`` a broken reference fails the build.
    """
    if node.get("refdomain") != "py":
        return None
    from docutils import nodes
    from sphinx.util.nodes import make_refnode

    if not _DOCUMENTED:
        _DOCUMENTED.update({k: v[0] for k, v in public_entries().items()})
        _DOCUMENTED.update({k: v[0] for k, v in public_constants().items()})
    target = node["reftarget"].lstrip("~.")
    module, klass = node.get("py:module"), node.get("py:class")
    candidates = [f"{module}.{klass}.{target}" if module and klass else None,
                  f"{module}.{target}" if module else None, target, f"gradtx.{target}"]
    domain = env.get_domain("py")
    if "." not in target:  # a short name written in a docstring shown under another module: any gradtx module's
        homes = {id(getattr(m, target)): f"{n}.{target}" for n, m in list(sys.modules.items())
                 if n.startswith("gradtx") and m is not None and hasattr(m, target)}
        if len(homes) == 1:
            candidates.append(next(iter(homes.values())))
    for dotted in filter(None, candidates):
        obj = _import_object(dotted)
        if obj is None:
            continue
        name = _DOCUMENTED.get(id(obj))
        if name is not None and name in domain.objects:
            entry = domain.objects[name]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)
        return nodes.literal(target, target)
    return None


def setup(app):
    app.connect("builder-inited", _on_builder_inited)
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "version": "1"}
