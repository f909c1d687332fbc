"""The gallery (docs/gallery/) stays true to the example scripts.

Every gallery page has a "Numbers to expect" table; each row names the text a script prints
just before a number, the value and a tolerance (see ``docs/gallery/make_figures.py``).

1. Default run (fast): every row agrees with the recorded output of the page's scripts,
   ``docs/gallery/output/PAGE.txt`` (written by ``make_figures.py``, and shown on the page), every
   page includes that output, and its figures exist in ``docs/gallery/img/`` below 200 kB.
2. ``pytest -m slow``: the scripts run again at full size, and every row agrees with what they
   print now (minutes: the perceptron's lifted quadratic variant dominates).
3. The checker itself: a value outside its tolerance fails, a label that is not printed fails.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"


def _load_make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", GALLERY / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mf = _load_make_figures()
PAGES = sorted(mf.PAGES)


def _disagreements(page: str, output: str) -> list[str]:
    rows = mf.numbers((GALLERY / f"{page}.md").read_text(encoding="utf-8"))
    assert rows, f"{page}.md has no numbers table"
    wrong = []
    for label, value, tol, relative in rows:
        try:
            actual = mf.printed(output, label)
        except LookupError as err:
            wrong.append(f"{page}: {label!r}: {err}")
            continue
        if not mf.agrees(value, tol, relative, actual):
            unit = " %" if relative else ""
            says = f"{value:g} ± {tol:g}{unit}"
            wrong.append(f"{page}: {label!r} printed {actual:g}, the page says {says}")
    return wrong


def test_every_page_has_a_gallery_entry():
    """Each page of PAGES exists, and every gallery page is in PAGES (or is the index)."""
    pages = {p.stem for p in GALLERY.glob("*.md")} - {"index"}
    assert pages == set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_numbers_agree_with_recorded_output(page):
    """The page's numbers agree with the scripts' recorded output, which the page includes."""
    output = (GALLERY / "output" / f"{page}.txt").read_text(encoding="utf-8")
    assert not _disagreements(page, output)
    text = (GALLERY / f"{page}.md").read_text(encoding="utf-8")
    assert f'--8<-- "docs/gallery/output/{page}.txt"' in text
    for script, _, _ in mf.PAGES[page]:
        assert f"$ python examples/{script}.py" in output, script
        assert f"examples/{script}.py" in text, f"{page}.md does not show the command"


@pytest.mark.parametrize("page", PAGES)
def test_figures_exist_and_are_small(page):
    """Every figure the page's scripts draw is committed, shown on the page and < 200 kB."""
    text = (GALLERY / f"{page}.md").read_text(encoding="utf-8")
    for _, _, figures in mf.PAGES[page]:
        for figure in figures:
            name = figure.replace("/", "_")
            path = GALLERY / "img" / name
            assert path.is_file(), path
            assert path.stat().st_size < mf.MAX_BYTES, (path, path.stat().st_size)
            assert f"(img/{name})" in text, f"{page}.md does not show {name}"


def test_checker_rejects_wrong_numbers():
    """A number outside its tolerance, or a label the script never prints, is reported."""
    page = "| `RMS error` of the data | 0.0449 | ± 0.003 |\n| `min slope` | 1.02 | ± 1 % |\n"
    rows = mf.numbers(page)
    assert rows == [("RMS error", 0.0449, 0.003, False), ("min slope", 1.02, 1.0, True)]
    output = "fit: min slope 1.0302, RMS error 0.0475\nnext: RMS error 0.1"
    assert mf.printed(output, "RMS error") == pytest.approx(0.0475)
    assert mf.printed(output, "next › RMS error") == pytest.approx(0.1)
    assert mf.agrees(0.0449, 0.003, False, 0.0475)
    assert not mf.agrees(0.0449, 0.002, False, 0.0475)
    assert mf.agrees(1.02, 1.0, True, 1.0302) and not mf.agrees(1.02, 1.0, True, 1.035)
    assert mf.printed("x = −2.5e-3", "x =") == pytest.approx(-2.5e-3)
    with pytest.raises(LookupError):
        mf.printed(output, "PSNR")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_numbers_agree_with_a_fresh_run(page, tmp_path):
    """Run the page's scripts at full size now; the page's numbers still hold."""
    pytest.importorskip("matplotlib")
    output, figures, _ = mf.run_page(page, tmp_path)
    assert not _disagreements(page, output)
    for path, _ in figures:
        assert path.is_file(), path
    assert re.search(r"\S", output)
