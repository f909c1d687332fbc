"""Regenerate the gallery: run the example scripts, record what they print, shrink their figures.

Run from the repository root (minutes; the perceptron's lifted quadratic variant dominates):

    OPENBLAS_NUM_THREADS=1 python docs/gallery/make_figures.py            # every page
    OPENBLAS_NUM_THREADS=1 python docs/gallery/make_figures.py shallow    # one page

For every gallery page (``PAGES``) each of its scripts runs at its full size as a reader would
run it, ``python examples/NAME.py --out DIR``; the page's recorded output
``docs/gallery/output/PAGE.txt`` gets the command line and everything the scripts print, and
their figures are copied to ``docs/gallery/img/`` (a path under ``--out`` with its ``/``
turned into ``_``), downscaled to at most ``MAX_WIDTH`` pixels and
quantised to a palette, so each stays well below ``MAX_BYTES``. The wall time of every script
is printed at the end (the pages quote it).

The pages' "Numbers to expect" tables are checked against what the scripts print by
``tests/test_gallery.py``: against the recorded output in the default test run, and against a
fresh run of the scripts under ``pytest -m slow``. ``numbers`` below reads a table and
``printed`` finds a number in an output; both are used by the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "gallery"
IMG = GALLERY / "img"
OUTPUT = GALLERY / "output"
MAX_WIDTH = 1000
MAX_BYTES = 200_000

#: page name → [(script, extra arguments, figures the script writes under --out)]
PAGES: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "shallow": [("shallow_relu", [], ["shallow_relu.png"])],
    "residual": [("residual_cubic", [], ["residual_cubic.png"])],
    "perceptron-tv": [
        (
            "perceptron_tv",
            [],
            ["perceptron_tv.png", "perceptron-tv/convergence.png"],
        )
    ],
    "autoencoder": [("autoencoder_digits", [], ["autoencoder_digits.png"])],
    "error-estimates": [
        ("theory_relu_l2", [], ["theory_relu_l2.png"]),
        ("theory_relu_tv", [], ["theory_relu_tv.png", "theory_relu_tv_rate.png"]),
        ("theory_tanh", [], ["theory_tanh.png"]),
        (
            "theory_softthreshold_l1",
            [],
            ["theory_softthreshold_l1_all.png", "theory_softthreshold_l1_active.png"],
        ),
    ],
    "deep-inversion": [("deep_dense_digits", [], ["deep_dense_digits.png"])],
    "training": [
        (
            "sparse_autoencoder",
            [],
            ["sparse_autoencoder.png", "sparse_autoencoder_curves.png"],
        )
    ],
    "distributed": [("distributed_batch", [], ["distributed_batch.png"])],
}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_ROW = re.compile(r"^\|\s*`(?P<label>[^`]+)`[^|]*\|\s*(?P<value>[^|]+)\|\s*±\s*(?P<tol>[^|]+)\|")


def command(script: str, args: list[str], out: str | Path = "out") -> str:
    """The command line a reader types for ``script`` (shown in the recorded output)."""
    return " ".join(["python", f"examples/{script}.py", "--out", str(out), *args])


def numbers(page_text: str) -> list[tuple[str, float, float, bool]]:
    """The rows of a page's "Numbers to expect" table: (label, value, tolerance, relative).

    A row reads ``| `label` … | value (unit) | ± tolerance [%] |``; the label is the text the
    script prints just before the number (``A › B`` means: the first B after A).
    """
    rows = []
    for line in page_text.splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        value = re.search(_NUMBER, match["value"].replace("−", "-"))
        tol = re.search(_NUMBER, match["tol"])
        if value is None or tol is None:
            raise ValueError(f"unreadable row of a numbers table: {line!r}")
        rows.append((match["label"], float(value[0]), float(tol[0]), "%" in match["tol"]))
    return rows


def printed(output: str, label: str) -> float:
    """The number printed right after ``label`` in ``output`` (``A › B``: the first B after A)."""
    output, label = output.replace("−", "-"), label.replace("−", "-")
    *sections, last = [part.strip() for part in label.split("›")]
    start = 0
    for section in sections:
        found = output.find(section, start)
        if found < 0:
            raise LookupError(f"{section!r} not in the output")
        start = found + len(section)
    pattern = re.escape(last) + r"[\s=:≈]*(" + _NUMBER + ")"
    match = re.compile(pattern).search(output, start)
    if match is None:
        raise LookupError(f"no number after {last!r} in the output")
    return float(match[1])


def agrees(expected: float, tol: float, relative: bool, actual: float) -> bool:
    """|actual − expected| ≤ tol (or tol % of |expected|)."""
    bound = tol / 100 * abs(expected) if relative else tol
    return abs(actual - expected) <= bound


def run_page(page: str, out: Path) -> tuple[str, list[tuple[Path, str]], list[float]]:
    """Run the scripts of ``page`` into ``out``.

    Returns the recorded output, the figures as (path, name in ``img/``) and the wall times.
    """
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    text, figures, times = [], [], []
    for script, args, produced in PAGES[page]:
        target = out / script
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / f"{script}.py"), "--out", str(target), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        if result.returncode not in (0, 1):  # 1: a script's honest "not verified"/not optimal
            raise RuntimeError(f"{script} failed ({result.returncode}):\n{result.stderr}")
        stdout = result.stdout.replace(str(target), "out").replace(f"{ROOT}/", "")
        text.append(f"$ {command(script, args)}\n{stdout}")
        figures.extend((target / name, name.replace("/", "_")) for name in produced)
    return "\n".join(text), figures, times


def shrink(source: Path, target: Path) -> None:
    """Copy a PNG downscaled to ``MAX_WIDTH`` pixels wide and quantised to 256 colours."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > MAX_WIDTH:
            height = round(image.height * MAX_WIDTH / image.width)
            image = image.resize((MAX_WIDTH, height), Image.LANCZOS)
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        image.save(target, optimize=True)
    if target.stat().st_size > MAX_BYTES:
        raise RuntimeError(f"{target} is {target.stat().st_size} bytes > {MAX_BYTES}")


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(PAGES)
    unknown = [name for name in names if name not in PAGES]
    if unknown:
        print(f"unknown page(s) {unknown}; pages: {', '.join(PAGES)}", file=sys.stderr)
        return 2
    IMG.mkdir(exist_ok=True)
    OUTPUT.mkdir(exist_ok=True)
    for page in names:
        with tempfile.TemporaryDirectory() as tmp:
            text, figures, times = run_page(page, Path(tmp))
            (OUTPUT / f"{page}.txt").write_text(text, encoding="utf-8")
            for figure, name in figures:
                shrink(figure, IMG / name)
        scripts = ", ".join(
            f"{script} {seconds:.1f} s"
            for (script, _, _), seconds in zip(PAGES[page], times, strict=True)
        )
        print(f"{page}: {scripts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
