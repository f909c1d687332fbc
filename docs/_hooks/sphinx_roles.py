"""MkDocs hook: render the Sphinx roles of bregmod's docstrings as cross-references.

The docstrings use Sphinx-style roles (``:class:`~bregmod.problem.Result```,
``:func:`certify```), which mkdocstrings leaves as literal text. After a page is rendered, each
``:role:<code>target</code>`` becomes an *optional* autorefs cross-reference: a link when
mkdocstrings documents the target, plain code otherwise. Optional references never fail the
strict build; references written in the Markdown pages themselves are not optional, so a
broken one there does.

A target that is not fully qualified (``Result``, ``Inversion.solve``) is looked up among the
objects of the ``bregmod`` package (loaded once with griffe): an object whose dotted path ends
with the target, preferring the modules the page documents; an ambiguous or unknown target
stays plain code. A leading ``~`` shows only the last component, and Sphinx's explicit form
``title <target>`` is understood.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):"
    r"<code>(?P<tilde>~?)(?P<target>[^<]+)</code>"
)
_MATH = re.compile(r":math:<code>(?P<tex>[^<]*)</code>")
_MATH_PAGE = re.compile(r"(?<![\w/.\"'=])docs/math/(?P<name>[a-z-]+)\.md")
_DIRECTIVE = re.compile(r"^:::\s+([\w.]+)", re.MULTILINE)
_EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^>]+)>$")


@lru_cache(maxsize=2)
def _paths(root: str) -> tuple[str, ...]:
    """Dotted paths of every object defined in the bregmod package found under ``root``."""
    try:
        import griffe

        package = griffe.load("bregmod", search_paths=[root], allow_inspection=False)
    except Exception:  # noqa: BLE001 - without griffe the roles simply stay plain code
        return ()
    found = []

    def walk(obj) -> None:
        found.append(obj.path)
        for member in obj.members.values():
            if not member.is_alias:
                walk(member)

    walk(package)
    return tuple(found)


def _identifier(target: str, modules: list[str], root: str) -> str:
    """The identifier autorefs should look up for ``target`` on a page documenting ``modules``."""
    if target.startswith("bregmod"):
        return target
    matches = [p for p in _paths(root) if p.endswith("." + target)]
    local = [p for p in matches if any(p.startswith(m + ".") for m in modules)]
    for candidates in (local, matches):
        if len(candidates) == 1:
            return candidates[0]
    return target


def on_page_content(html_text: str, page, config, files):  # noqa: ARG001 (MkDocs hook signature)
    """Replace the Sphinx roles of a rendered page by optional autorefs references."""
    modules = _DIRECTIVE.findall(page.markdown or "")
    root = str(Path(config.config_file_path).resolve().parent)

    def replace(match: re.Match) -> str:
        text = html.unescape(match["target"]).strip()
        explicit = _EXPLICIT.match(text)
        target = (explicit["target"] if explicit else text).strip().removesuffix("()")
        if explicit:
            shown = explicit["title"]
        elif match["tilde"]:
            shown = target.split(".")[-1]
        else:
            shown = text
        identifier = _identifier(target, modules, root)
        return (
            f'<autoref identifier="{html.escape(identifier)}" optional>'
            f"<code>{html.escape(shown)}</code></autoref>"
        )

    html_text = _MATH.sub(lambda m: f'<span class="arithmatex">\\({m["tex"]}\\)</span>', html_text)
    depth = page.file.src_uri.count("/")

    def link(match: re.Match) -> str:
        target = f"math/{match['name']}.md"
        if files.get_file_from_path(target) is None:
            return match[0]  # not a page: left as text (tests/test_docs.py checks the names)
        href = "../" * depth + f"math/{match['name']}.html"
        return f'<a href="{href}">{match[0]}</a>'

    html_text = _MATH_PAGE.sub(link, html_text)
    return _ROLE.sub(replace, html_text)
