"""MkDocs hook: render the Unicode formulas of bregmod's docstrings instead of mangling them.

The docstrings write formulas in Unicode with TeX-like scripts, readable in ``help()``:
``u_{j−1}``, ``B_{Ψ_k}(z_k, x_k)``, ``e^{−x}``, ``ℝ^{n_{l−1}}``, ``Φ*(x) = … Φ*``. Plain Markdown
shows the braces as raw TeX and turns ``_…_`` and ``*…*`` into emphasis, eating the formula.
This hook adds one inline pattern to every Markdown conversion of the site (pages and
docstrings), placed before emphasis and after code spans and ``pymdownx.arithmatex``:

* ``X_{…}`` and ``X^{…}`` (one level of nested braces) become ``X<sub>…</sub>`` and
  ``X<sup>…</sup>``, their contents converted the same way;
* a single-character subscript after a letter, ``x_l``, ``Σ_k`` (not ``u_true``), becomes
  ``x<sub>l</sub>``;
* a conjugation star right after a symbol and before ``(``, ``_``, ``'``, ``/``, `` =``,
  ``Φ*(x)``, ``h_0*(y)``, ``Φ* = …``, stays a literal ``*`` instead of opening an emphasis
  (an emphasis ``*word*`` is left alone).

Code spans and marked formulas (``$…$``) are matched first and left alone, so identifiers in
backticks such as ``global_optimum_claimed`` are untouched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree

from markdown import Extension
from markdown.inlinepatterns import InlineProcessor
from mkdocs.plugins import event_priority

_GROUP = r"\{(?P<body>(?:[^{}]|\{[^{}]*\})*)\}"
# one Latin or Greek letter or digit, not followed by more of a name (``u_true`` stays)
_SINGLE = r"_(?P<single>[A-Za-z0-9α-ωΑ-Ω])(?![A-Za-z0-9_{α-ωΑ-Ω])"
_SCRIPT = re.compile(
    # after a letter, digit, bracket, prime or dagger (\x03 ends a placeholder: x_0 before *)
    r"(?<=[\w)\]′'ΦΨΣΔΛΘΩ∇∂ℝ|‖†\x03])"
    r"(?:(?P<kind>[_^])" + _GROUP + "|" + _SINGLE + r"|(?P<star>\*)(?=[(_'⁻/}]| =| \())"
)
_INNER = re.compile(r"(?P<kind>[_^])" + _GROUP + "|" + _SINGLE)


def _fill(element: etree.Element, text: str) -> None:
    """Append ``text`` to ``element``, its own scripts as sub/sup children."""
    last = None
    position = 0
    for match in _INNER.finditer(text):
        plain = text[position : match.start()]
        if last is None:
            element.text = (element.text or "") + plain
        else:
            last.tail = (last.tail or "") + plain
        tag = "sup" if match["kind"] == "^" else "sub"
        last = etree.SubElement(element, tag)
        _fill(last, match["body"] if match["body"] is not None else match["single"])
        position = match.end()
    rest = text[position:]
    if last is None:
        element.text = (element.text or "") + rest
    else:
        last.tail = (last.tail or "") + rest


class _ScriptProcessor(InlineProcessor):
    def handleMatch(self, m: re.Match, data: str):  # noqa: N802 (Markdown API)
        if m["star"]:
            return "*", m.start(0), m.end(0)
        element = etree.Element("sup" if m["kind"] == "^" else "sub")
        _fill(element, m["body"] if m["body"] is not None else m["single"])
        return element, m.start(0), m.end(0)


class UnicodeMathExtension(Extension):
    """Register the pattern between code spans/arithmatex (higher) and emphasis (lower)."""

    def extendMarkdown(self, md) -> None:  # noqa: N802 (Markdown API)
        md.inlinePatterns.register(_ScriptProcessor(_SCRIPT.pattern, md), "unicode_math", 65)


@event_priority(100)  # before mkdocstrings reads the extensions
def on_config(config):
    config.markdown_extensions.append(UnicodeMathExtension())
    return config
