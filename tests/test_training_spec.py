"""Training specs (bregmod.training_spec) and ``bregmod train``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bregmod.cli import main
from bregmod.spec import SpecError
from bregmod.training_spec import TRAINING_SPEC_DIR, load_training_spec, parse_training_spec

SPEC = """
name = "tiny"

[input]
shape = [3]

[[layers]]
type = "dense"
out = 5
activation = "relu"
weights = { distribution = "normal", std = 0.5, seed = 0 }

[[layers]]
type = "dense"
out = 2
weights = { distribution = "normal", std = 0.5, seed = 1 }

[data]
inputs = { file = "data.npz", key = "x" }
targets = { file = "data.npz", key = "y" }

[training]
penalties = { 1 = 0.01 }
weight_decay = 0.001

[solver]
epochs = 2
batch_size = 4
tau = 2.0
"""


@pytest.fixture
def spec_dir(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x=rng.standard_normal((10, 3)),
             y=rng.standard_normal((10, 2)))
    (tmp_path / "tiny.toml").write_text(SPEC)
    return tmp_path


def test_spec_builds_the_training_problem(spec_dir):
    spec = load_training_spec(spec_dir / "tiny.toml")
    assert spec.name == "tiny"
    assert spec.training.n_samples == 10
    assert spec.training.state_penalties == {1: 0.01}
    assert spec.training.weight_decay == 0.001
    assert spec.solve_options == {"epochs": 2, "batch_size": 4, "tau": 2.0}
    assert spec.validation is None
    np.testing.assert_array_equal(
        spec.training.network.layers[0].W,
        np.random.default_rng(0).standard_normal((5, 3)) * 0.5,
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("epochs = 2", "epochs = 2\nlearning_rate = 0.1"), "unknown key 'learning_rate'"),
        (("tau = 2.0", 'tau = "big"'), "solver.tau: expected number"),
        (("penalties = { 1 = 0.01 }", "penalties = { 2 = 0.01 }"), "hidden layer index"),
        (('key = "y" }', 'key = "z" }'), "has no array 'z'"),
        (('[data]', '[data]\nsource = "web"'), "unknown source 'web'"),
    ],
)
def test_bad_specs_are_located(spec_dir, edit, message):
    text = SPEC.replace(*edit)
    with pytest.raises(SpecError, match=message) as info:
        parse_training_spec(text, base_dir=spec_dir, source="tiny.toml")
    assert "tiny.toml" in str(info.value)


def test_targets_outside_the_last_range_are_reported(spec_dir):
    text = SPEC.replace("out = 2\n", 'out = 2\nactivation = "relu"\n')
    with pytest.raises(SpecError, match="targets"):
        parse_training_spec(text, base_dir=spec_dir, source="tiny.toml")


def test_bundled_teacher_student_spec():
    assert (TRAINING_SPEC_DIR / "teacher-student.toml").is_file()
    spec = load_training_spec("teacher-student", quick=True)
    assert spec.training.n_samples == 60
    assert spec.validation[0].shape == (200, 8)
    # The teacher's labels are the forward pass of a network of the same architecture.
    assert spec.validation[1].shape == (200, 4)


def test_cli_train_writes_outputs_and_resumes(spec_dir, capsys):
    out = spec_dir / "out"
    assert main(["train", str(spec_dir / "tiny.toml"), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 epochs" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["stats"]["epochs"] == 2 and len(report["history"]["energy"]) == 2
    assert report["history"]["val_loss"] == [None, None]
    with np.load(out / "weights.npz", allow_pickle=False) as weights:
        assert sorted(weights.files) == ["W1", "W2", "b1", "b2"]
        first = weights["W1"]
    assert (out / "loss_curves.png").stat().st_size > 0
    # Continue to 4 epochs: the same as 4 epochs in one go.
    assert main(["train", str(spec_dir / "tiny.toml"), "--out", str(out), "--resume",
                 "--set", "solver.epochs=4", "--no-progress"]) == 0
    whole = spec_dir / "whole"
    assert main(["train", str(spec_dir / "tiny.toml"), "--out", str(whole),
                 "--set", "solver.epochs=4", "--no-progress"]) == 0
    with np.load(out / "weights.npz") as a, np.load(whole / "weights.npz") as b:
        np.testing.assert_array_equal(a["W1"], b["W1"])
        assert not np.array_equal(a["W1"], first)
    assert json.loads((out / "report.json").read_text())["stats"]["resumed_from_epoch"] == 2


def test_cli_train_errors(spec_dir, capsys):
    assert main(["train", str(spec_dir / "tiny.toml"), "--out", str(spec_dir / "new"),
                 "--resume"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", str(spec_dir / "missing.toml"), "--out", str(spec_dir / "o")]) == 2
    assert "cannot read spec file" in capsys.readouterr().err


CONV_SPEC = """
name = "conv"

[input]
shape = [1, 6, 6]

[[layers]]
type = "conv2d"
channels = 3
padding = 1
activation = "relu"
weights = { distribution = "normal", std = 0.3, seed = 0 }

[[layers]]
type = "conv2d"
channels = 1
stride = 2
weights = { distribution = "normal", std = 0.2, seed = 1 }

[data]
source = "teacher"
samples = 30
validation_samples = 10

[solver]
epochs = 2
batch_size = 10
"""


def test_cli_trains_a_convolutional_spec(tmp_path, capsys):
    (tmp_path / "conv.toml").write_text(CONV_SPEC)
    spec = load_training_spec(tmp_path / "conv.toml")
    assert spec.training.inputs.shape == (30, 36)
    assert spec.validation[1].shape == (10, 1, 2, 2)  # 6×6 → 6×6 → (6 − 3)/2 + 1 = 2
    out = tmp_path / "out"
    assert main(["train", str(tmp_path / "conv.toml"), "--out", str(out), "--no-progress"]) == 0
    assert "2 epochs" in capsys.readouterr().out
    with np.load(out / "weights.npz", allow_pickle=False) as weights:
        assert weights["W1"].shape == (3, 1, 3, 3) and weights["b1"].shape == (3,)
        assert weights["W2"].shape == (1, 3, 3, 3) and weights["b2"].shape == (1,)
        initial = spec.training.network.layers[0].kernel
        assert not np.array_equal(weights["W1"], initial)
