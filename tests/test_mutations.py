"""The mutation list of ``tools/mutations.py`` stays true to the code it mutates.

Every entry's original text must occur exactly once in its file, or in exactly one module of
the package if the code moved verbatim (else the entry is stale after a refactor), differ from
its mutation, and name test files that exist. The mutation runs themselves take minutes and
are run by hand (``python tools/mutations.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mutations", ROOT / "tools" / "mutations.py")
mutations = importlib.util.module_from_spec(_spec)
sys.modules["mutations"] = mutations  # dataclasses resolve their module by name
_spec.loader.exec_module(mutations)


@pytest.mark.parametrize("mutation", mutations.MUTATIONS, ids=lambda m: m.name)
def test_mutation_entry_is_current(mutation):
    assert mutations.locate(mutation, ROOT) is not None, f"{mutation.name}: stale original text"
    assert mutation.mutated != mutation.original and mutation.models
    for test in mutation.tests:
        assert (ROOT / test.split("::")[0]).is_file(), test


def test_mutation_names_are_unique():
    assert len(mutations.mutation_table()) == len(mutations.MUTATIONS)
