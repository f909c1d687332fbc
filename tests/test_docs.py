"""The documentation stays true: every Python code block in docs/ runs, and the site builds.

1. Every fenced ```python block of every page under docs/ is executed. The blocks of one page
   run in order in one shared namespace (a page builds its example up step by step), in a
   temporary working directory that links ``examples/`` (pages import the example scripts'
   functions as a reader would from the repository root). A block preceded by the HTML
   comment ``<!-- skip -->`` is not run (reserved for blocks that need minutes; the comment is
   visible in the Markdown source, and at most three blocks may carry it).
2. ``mkdocs build --strict`` builds the site into a temporary directory and must succeed: a
   broken cross-reference, a missing page or a docstring mkdocstrings cannot parse fails it.
3. The build really is strict: a page with a broken cross-reference makes it fail.
4. Every ``examples/…`` and ``bregmod/specs/…`` path named in the docs exists, and every page
   is in the navigation.
5. The mathematics renders: in the built HTML no prose shows raw TeX (``\\frac``, ``u_{j−1}``,
   ``e^{−x}``, ``$``) outside the formulas ``pymdownx.arithmatex`` marks, no formula is mangled by
   Markdown's emphasis (``Φ*(x) … Φ*`` turned into italics), and every marked formula parses
   with the vendored KaTeX (run with node where it is installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<info>[^\n`]*)$")
_SKIP = "<!-- skip -->"


def _blocks(path: Path) -> list[tuple[int, str, bool]]:
    """The ```python blocks of a Markdown page: (first line number, code, skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language = match["info"].strip().split(" ")[0].strip("{}.").lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path.relative_to(ROOT)}:{i + 1}: unclosed code fence")
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]]
        if language in ("python", "py"):
            before = (lines[k].strip() for k in range(i - 1, -1, -1))
            previous = next((line for line in before if line), "")
            blocks.append((start + 1, "\n".join(body) + "\n", previous == _SKIP))
        i = j + 1
    return blocks


PAGES = sorted(DOCS.rglob("*.md"))
PAGES_WITH_CODE = [p for p in PAGES if _blocks(p)]


def test_docs_have_code():
    """The harness finds the pages' code (guards against a fence regex that matches nothing)."""
    assert len(PAGES_WITH_CODE) >= 10, [str(p) for p in PAGES_WITH_CODE]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    """Run every ```python block of ``page`` in order, sharing one namespace."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")  # figures are written to files only
    monkeypatch.chdir(tmp_path)
    # Pages run from the repository root in the docs' instructions; the example scripts are
    # reachable from the temporary directory the same way.
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code, skipped in _blocks(page):
        if skipped:
            continue
        where = f"{page.relative_to(ROOT)}:{line}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                exec(compile(code, where, "exec"), namespace)  # noqa: S102
            except Exception as exc:
                raise AssertionError(f"code block at {where} failed: {exc!r}") from exc


def test_skipped_blocks_are_rare():
    """Skipping is for minute-long blocks only; keep the list short and visible."""
    skipped = [
        f"{page.relative_to(ROOT)}:{line}"
        for page in PAGES
        for line, _, skip in _blocks(page)
        if skip
    ]
    assert len(skipped) <= 3, skipped


def test_referenced_files_exist():
    """Paths of examples and bundled specs named in the docs exist in the repository."""
    pattern = re.compile(r"\b((?:examples|bregmod/specs)/[A-Za-z0-9_\-./]+\.(?:py|toml))")
    missing = []
    for page in PAGES:
        for name in set(pattern.findall(page.read_text(encoding="utf-8"))):
            if not (ROOT / name).exists():
                missing.append(f"{page.relative_to(ROOT)}: {name}")
    assert not missing, missing


# The mathematics lives in docs/math/; these files were never part of the repository.
_DEAD = ("MATH" + ".md", "PERFORMANCE" + ".md")
_MATH_REF = re.compile(r"docs/math/([a-z-]+)\.md")


_SOURCE_FOLDERS = ("bregmod", "docs", "examples", "benchmarks", "tests")


def _sources() -> list[Path]:
    found = []
    for folder in _SOURCE_FOLDERS:
        for suffix in ("*.py", "*.md", "*.toml"):
            found.extend((ROOT / folder).rglob(suffix))
    return found


def test_no_dead_references():
    """No docstring, page, example or test points to a file users do not have."""
    dead = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _sources()
        for name in _DEAD
        if name in path.read_text(encoding="utf-8")
    ]
    assert not dead, dead


def test_math_references_exist():
    """Every ``docs/math/NAME.md`` named in the code or the docs is a page of the site."""
    missing = sorted(
        {
            f"{path.relative_to(ROOT)}: docs/math/{name}.md"
            for path in _sources()
            for name in _MATH_REF.findall(path.read_text(encoding="utf-8"))
            if not (DOCS / "math" / f"{name}.md").is_file()
        }
    )
    assert not missing, missing


def test_every_page_is_in_the_nav():
    """mkdocs only warns about pages outside the nav in strict mode when configured; check."""
    nav = MKDOCS_YML.read_text(encoding="utf-8")
    for page in PAGES:
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built once by ``mkdocs build --strict`` (the command CI runs)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path_factory.mktemp("site")
    result = _mkdocs(MKDOCS_YML, site)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def test_mkdocs_build_strict(site):
    """The strict build succeeds, renders the API pages and ships KaTeX (no network needed)."""
    api = (site / "api" / "problem.html").read_text(encoding="utf-8")
    assert "Inversion" in api and "solve" in api
    for asset in (
        "assets/katex/katex.min.js",
        "assets/katex/katex.min.css",
        "assets/katex/fonts/KaTeX_Main-Regular.woff2",
        "assets/render-math.js",
        "assets/extra.css",
    ):
        assert (site / asset).is_file(), asset
    assert "assets/katex/katex.min.js" in api and "//cdn" not in api
    # a docstring's "docs/math/….md" is a link to that page of the site
    certificate = (site / "api" / "certificate.html").read_text(encoding="utf-8")
    assert '<a href="../math/certificates.html">docs/math/certificates.md</a>' in certificate


_VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "col"}


class _Prose(HTMLParser):
    """The prose of a built page: its text outside code, scripts and marked formulas.

    Collects ``text`` (the prose), ``formulas`` (the TeX of every arithmatex element, with
    whether it is displayed) and ``emphasis`` (for every ``<em>``/``<strong>``: the 12
    characters of prose before it and its text).
    """

    _OPAQUE = {"code", "pre", "script", "style", "kbd", "samp", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.formulas: list[tuple[str, bool]] = []
        self.emphasis: list[tuple[str, str]] = []
        self._opaque = 0  # depth inside an element whose text is not prose
        self._math: list[str] | None = None
        self._math_depth = 0
        self._math_display = False
        self._em: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        if self._math is not None:
            self._math_depth += 1
            return
        if "arithmatex" in (dict(attrs).get("class") or "").split():
            self._math, self._math_depth, self._math_display = [], 1, tag == "div"
            return
        if self._opaque or tag in self._OPAQUE:
            self._opaque += 1
            return
        if tag in ("em", "strong"):
            before = "".join(self.text)[-12:]
            self._em = [before, ""]

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if self._math is not None:
            self._math_depth -= 1
            if self._math_depth == 0:
                self.formulas.append(("".join(self._math), self._math_display))
                self._math = None
            return
        if self._opaque:
            self._opaque -= 1
            return
        if tag in ("em", "strong") and self._em is not None:
            self.emphasis.append((self._em[0], self._em[1]))
            self._em = None

    def handle_data(self, data):
        if self._math is not None:
            self._math.append(data)
        elif not self._opaque:
            self.text.append(data)
            if self._em is not None:
                self._em[1] += data


def _pages(site: Path) -> list[Path]:
    return [p for p in sorted(site.rglob("*.html")) if p.name != "404.html"]


# TeX control words, sub/superscript groups and dollar signs: prose never has them.
_RAW_TEX = re.compile(r"\\[A-Za-z]+|[_^]\{|\$")
# Emphasis that starts glued to a symbol (Φ*(x) … Φ* → Φ<em>(x) … Φ</em>) or spans a formula.
_GLUED = re.compile(r"[\w)\]}′'²*]\Z")
_FORMULA_INSIDE = re.compile(r"[=⟨⟩‖Σ]")


def _parse(page: Path) -> _Prose:
    parser = _Prose()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_no_raw_tex_or_mangled_formulas(site):
    """No page shows TeX as text or a formula that Markdown's emphasis has eaten."""
    problems = []
    for page in _pages(site):
        parsed = _parse(page)
        text = "".join(parsed.text)
        name = page.relative_to(site)
        for match in _RAW_TEX.finditer(text):
            context = text[max(0, match.start() - 30) : match.end() + 20].replace("\n", " ")
            problems.append(f"{name}: raw TeX …{context}…")
        for before, inner in parsed.emphasis:
            if _GLUED.search(before) or _FORMULA_INSIDE.search(inner):
                problems.append(f"{name}: emphasis inside a formula …{before}<em>{inner[:40]}…")
    assert not problems, "\n".join(problems[:60]) + f"\n({len(problems)} in all)"


def _unicode_math():
    spec = importlib.util.spec_from_file_location(
        "unicode_math", DOCS / "_hooks" / "unicode_math.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (
            "z_j = σ(W_j u_{j−1} + b_j)",
            "z<sub>j</sub> = σ(W<sub>j</sub> u<sub>j−1</sub> + b<sub>j</sub>)",
        ),
        ("ℝ^{n_{l−1}} and e^{−x}", "ℝ<sup>n<sub>l−1</sub></sup> and e<sup>−x</sup>"),
        ("Σ_{k^{2}} D_J^{p_α}", "Σ<sub>k<sup>2</sup></sub> D<sub>J</sub><sup>p<sub>α</sub></sup>"),
        ("B_Ψ = W_lᵀ x", "B<sub>Ψ</sub> = W<sub>l</sub>ᵀ x"),
        ("Φ*(x) = x s and Φ* = min_v f", "Φ*(x) = x s and Φ* = min<sub>v</sub> f"),
        (
            "`u_true`, u_true, *a* and **b**",
            "<code>u_true</code>, u_true, <em>a</em> and <strong>b</strong>",
        ),
        ("$x_{1}$", '<span class="arithmatex">\\(x_{1}\\)</span>'),
    ],
)
def test_unicode_math_hook(text, html):
    """Docstring formulas get real sub/superscripts; code, math and emphasis are unchanged."""
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("pymdownx")
    md = markdown.Markdown(
        extensions=[_unicode_math().UnicodeMathExtension(), "pymdownx.arithmatex"],
        extension_configs={"pymdownx.arithmatex": {"generic": True}},
    )
    assert md.convert(text) == f"<p>{html}</p>"


def test_pages_have_formulas(site):
    """The harness sees the formulas (guards against a parser that finds none)."""
    counts = {str(p.relative_to(site)): len(_parse(p).formulas) for p in _pages(site)}
    assert counts["math/index.html"] >= 5, counts
    assert sum(counts.values()) >= 300, counts


_KATEX_CHECK = r"""
const fs = require("fs");
const katex = require(process.argv[2]);
const macros = require(process.argv[3]).macros;
const formulas = JSON.parse(fs.readFileSync(0, "utf8"));
const failed = [];
for (const [where, tex, display] of formulas) {
  try {
    katex.renderToString(tex, {displayMode: display, throwOnError: true, macros: {...macros}});
  } catch (err) {
    failed.push(where + ": " + tex + "  -- " + err.message);
  }
}
process.stdout.write(JSON.stringify(failed));
"""


def test_formulas_parse_with_katex(site, tmp_path):
    """Every marked formula of the site is valid TeX for the KaTeX the site ships."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (optional dependency of the KaTeX check)")
    formulas = []
    for page in _pages(site):
        for tex, display in _parse(page).formulas:
            tex = tex.strip()
            tex = tex[2:-2] if tex[:2] in ("\\(", "\\[") else tex
            formulas.append((str(page.relative_to(site)), tex, display))
    assert formulas
    script = tmp_path / "check.js"
    script.write_text(_KATEX_CHECK, encoding="utf-8")
    assets = DOCS / "assets"
    result = subprocess.run(
        [node, str(script), str(assets / "katex" / "katex.min.js"), str(assets / "render-math.js")],
        input=json.dumps(formulas),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    failed = json.loads(result.stdout)
    assert not failed, "\n".join(failed[:40])


@pytest.mark.slow
def test_mkdocs_strict_fails_on_broken_reference(tmp_path):
    """A broken cross-reference fails the strict build (so CI catches one)."""
    pytest.importorskip("mkdocstrings")
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    (docs / "index.md").write_text(
        (docs / "index.md").read_text(encoding="utf-8")
        + "\n\nSee [nothing][bregmod.problem.NoSuchThing].\n",
        encoding="utf-8",
    )
    config = tmp_path / "mkdocs.yml"
    text = MKDOCS_YML.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^docs_dir:.*$", f"docs_dir: {docs}", text)
    text = re.sub(r"(?m)^(\s+)paths: \[\.\]", rf"\1paths: [{ROOT}]", text)
    config.write_text(text, encoding="utf-8")
    result = _mkdocs(config, tmp_path / "site")
    assert result.returncode != 0
    assert "NoSuchThing" in result.stdout + result.stderr
