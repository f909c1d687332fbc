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
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
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


def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` succeeds (the command CI runs) and renders the API pages."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    result = _mkdocs(MKDOCS_YML, site)
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "problem.html").read_text(encoding="utf-8")
    assert "Inversion" in api and "solve" in api


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
