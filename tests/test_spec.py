"""Tests of bregmod.spec: the TOML format, its validation and the bundled specs.

Every error test asserts the message: it must name the key (dotted path) and, where the entry
is in the file, its line.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from bregmod.activations import LeakyReLU, ReLU
from bregmod.data import phantom
from bregmod.network import Conv2d, Dense, Residual, Sequential, ShallowSum
from bregmod.regularizers import TotalVariation, WeightedSum
from bregmod.spec import (
    SPEC_DIR,
    SpecError,
    bundled_specs,
    estimate_memory,
    load_spec,
    parse_spec,
    resolve_spec,
)

BASE = """\
name = "tiny"
description = "a tiny perceptron"

[input]
shape = [8, 8]

[[layers]]
type = "dense"
out = 16
activation = "relu"
weights = { distribution = "normal", std = 1.0, seed = 0 }
bias = { distribution = "normal", std = 1.0, seed = 1 }

[data]
ground_truth = { image = "phantom" }
noise = { kind = "gaussian", level = 0.01, where = "pre_activation", seed = 2 }

[regularizer]
expr = "0.1 * tv"

[model]
fidelity = "bregman"

[solver]
name = "pdhg"
tol = 1e-4
max_iter = 50

[quick]
"input.shape" = [4, 4]
"layers.0.out" = 8
"""


def parse(text: str, **kwargs):
    return parse_spec(textwrap.dedent(text), **kwargs)


def error(text: str, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def line_of(text: str, fragment: str) -> int:
    """1-based line of the first line of ``text`` containing ``fragment``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


# --- a complete spec ---------------------------------------------------------------------------


def test_base_spec_builds_the_declared_problem():
    spec = parse(BASE)
    assert spec.name == "tiny" and spec.description == "a tiny perceptron"
    assert isinstance(spec.network, Dense) and isinstance(spec.network.activation, ReLU)
    assert spec.input_shape == (8, 8) and spec.output_shape == (16,)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(spec.network.W, rng.normal(0.0, 1.0, (16, 64)))
    np.testing.assert_array_equal(spec.ground_truth, phantom(8))
    np.testing.assert_allclose(spec.clean_data, spec.network(phantom(8)))
    assert spec.problem.fidelity == "bregman" and spec.problem.data is not None
    assert isinstance(spec.problem.reg, WeightedSum)
    assert spec.regularizer == "0.1·tv"
    assert spec.solver.kwargs()["solver"] == "pdhg"
    assert spec.solver.kwargs()["max_iter"] == 50 and spec.solver.tol == 1e-4
    assert spec.quick is False


def test_pre_activation_noise_stays_in_the_range_of_relu_with_the_stated_level():
    spec = parse(BASE)
    layer = spec.network
    pre = layer.W @ spec.ground_truth.ravel() + layer.b
    assert spec.noise["std"] == pytest.approx(0.01 * np.sqrt(np.mean(pre**2)))
    assert np.all(spec.data >= 0)
    eps = np.random.default_rng(2).standard_normal(16) * spec.noise["std"]
    np.testing.assert_allclose(spec.data, np.maximum(pre + eps, 0.0))


def test_output_noise_is_projected_onto_dom_psi_for_the_bregman_fidelity():
    text = BASE.replace('where = "pre_activation"', 'where = "output"').replace(
        "level = 0.01", "level = 0.5")
    spec = parse(text)
    assert spec.noise["projected"] and np.all(spec.data >= 0)
    raw = spec.clean_data + spec.noise["std"] * np.random.default_rng(2).standard_normal(16)
    assert (raw < 0).any()  # the projection did something
    np.testing.assert_allclose(spec.data, np.maximum(raw, 0.0))


def test_uniform_noise_has_the_stated_standard_deviation():
    text = BASE.replace('kind = "gaussian"', 'kind = "uniform"').replace(
        'where = "pre_activation"', 'where = "output"').replace(
        'fidelity = "bregman"', 'fidelity = "quadratic"').replace("level = 0.01", "level = 0.1")
    spec = parse(text.replace('"layers.0.out" = 8', '"layers.0.out" = 4000'), quick=True)
    noise = spec.data - spec.clean_data
    rms = np.sqrt(np.mean(spec.clean_data**2))
    assert np.abs(noise).max() <= np.sqrt(3) * 0.1 * rms + 1e-12
    assert noise.std() == pytest.approx(0.1 * rms, rel=0.05)


def test_quick_overrides_and_caller_overrides():
    overrides = {"solver.tol": 1e-3, "regularizer.scale": "per_output"}
    spec = parse(BASE, quick=True, overrides=overrides)
    assert spec.quick and spec.input_shape == (4, 4) and spec.output_shape == (8,)
    np.testing.assert_array_equal(spec.ground_truth, phantom(4))
    assert spec.solver.tol == 1e-3
    assert spec.regularizer == "0.8·tv"  # 0.1 · m, m = 8 outputs
    assert spec.overrides == overrides


# --- the regulariser expression ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "shown"),
    [
        ("tv", "tv"),
        ("0.015 * tv + nonnegative", "0.015·tv + nonnegative"),
        ("2*l1 + squared_l2 * 0.5", "2·l1 + 0.5·squared_l2"),
        ("1e-2 * tv_anisotropic + box(-1, 1.5)", "0.01·tv_anisotropic + box(-1, 1.5)"),
    ],
)
def test_regularizer_expressions(expr, shown):
    spec = parse(BASE.replace('expr = "0.1 * tv"', f'expr = "{expr}"'))
    assert spec.regularizer == shown
    u = np.full((8, 8), 0.5)
    assert np.isfinite(spec.problem.reg(u))


def test_regularizer_values_match_the_library():
    spec = parse(BASE.replace('expr = "0.1 * tv"', 'expr = "0.25 * tv + 3 * squared_l2"'))
    u = phantom(8)
    expected = 0.25 * TotalVariation((8, 8))(u) + 3 * 0.5 * np.sum(u**2)
    assert spec.problem.reg(u) == pytest.approx(expected)


def test_per_output_scaling_leaves_indicators_alone():
    text = BASE.replace('expr = "0.1 * tv"', 'expr = "0.1 * tv + box(0, 1)"\nscale = "per_output"')
    assert parse(text).regularizer == "1.6·tv + box(0, 1)"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0.1 * tvv", "unknown regulariser 'tvv'"),
        ("0.1 tv", "expected '*' after the weight"),
        ("-0.1 * tv", "must be finite and > 0, got -0.1 (a negative weight makes J non-convex)"),
        ("0 * l1", "must be finite and > 0, got 0 (drop the term instead of giving it weight 0)"),
        ("1e400 * tv", "the number 1e400 in '1e400 * tv' overflows to infinity"),
        ("1e200 * tv * 1e200", "must be finite and > 0, got inf (weights must be finite)"),
        ("box(1)", "box takes 2 argument(s): box(lo, hi) (in 'box(1)')"),
        ("tv(3)", "tv takes 0 argument(s): tv (no arguments)"),
        ("tv +", "expected a term name, found the end"),
        ("__import__('os')", "cannot parse"),
        ("tv; l1", "cannot parse"),
        ("box(1, 0)", "regularizer.expr"),
    ],
)
def test_regularizer_expression_errors(expr, fragment):
    text = BASE.replace('expr = "0.1 * tv"', f'expr = "{expr}"')
    message = error(text)
    assert fragment in message
    assert f"line {line_of(text, 'expr =')}: regularizer.expr" in message


def test_tv_needs_a_two_dimensional_input():
    text = BASE.replace("shape = [8, 8]", "shape = [64]").replace(
        'ground_truth = { image = "phantom" }', "ground_truth = { values = [0.5] }")
    message = error(text.replace("values = [0.5]", "values = " + str([0.5] * 64)))
    assert "regularizer.expr" in message and "2-D input" in message


# --- validation: unknown keys, types, files, shapes --------------------------------------------


def test_unknown_key_names_key_and_line():
    text = BASE.replace("out = 16", "out = 16\nwidht = 3")
    message = error(text)
    assert f"line {line_of(text, 'widht')}: layers.0.widht" in message
    assert "unknown key 'widht'" in message and "allowed keys" in message


def test_unknown_key_inside_an_inline_table_of_the_second_layer():
    text = BASE.replace(
        "[data]",
        '[[layers]]\ntype = "dense"\nout = 4\nweights = { distribution = "normal", sdt = 2 }\n\n'
        "[data]",
    )
    message = error(text)
    assert f"line {line_of(text, 'sdt')}: layers.1.weights.sdt" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ("out = 16", "out = 16.0", "layers.0.out", "expected integer, got float 16.0"),
        ("out = 16", 'out = "16"', "layers.0.out", "expected integer, got str"),
        ("tol = 1e-4", "tol = true", "solver.tol", "expected number, got bool"),
        ("tol = 1e-4", "tol = -1.0", "solver.tol", "tol must be > 0"),
        ('name = "pdhg"', 'name = "newton"', "solver.name", "unknown solver 'newton'"),
        ('fidelity = "bregman"', 'fidelity = "l2"', "model.fidelity", "unknown fidelity 'l2'"),
        ('activation = "relu"', 'activation = "hard_threshold"', "layers.0.activation",
         "unknown activation"),
        ('activation = "relu"', 'activation = { name = "leaky_relu", slop = 0.1 }',
         "layers.0.activation.slop", "has no parameter 'slop'"),
        ('activation = "relu"', 'activation = { name = "leaky_relu", slope = 2.0 }',
         "layers.0.activation", "slope"),
        ('type = "dense"', 'type = "lstm"', "layers.0.type", "unknown layer type 'lstm'"),
        ("std = 1.0, seed = 0", "std = -1.0, seed = 0", "layers.0.weights.std", "std must be"),
        ("std = 1.0, seed = 0", "low = 1.0, seed = 0", "layers.0.weights.low",
         "does not apply to distribution 'normal'"),
        ("out = 16", "out = 0", "layers.0.out", "must be >= 1"),
        ("shape = [8, 8]", "shape = [8, -8]", "input.shape", "positive integers"),
        ('image = "phantom"', 'image = "lena"', "data.ground_truth.image", "unknown test image"),
        ('kind = "gaussian"', 'kind = "laplace"', "data.noise.kind", "unknown noise kind"),
        ("seed = 2 }", "seed = -2 }", "data.noise.seed", "seed must be an integer >= 0, got -2"),
        ("std = 1.0, seed = 0", "std = 1.0, seed = -1", "layers.0.weights.seed",
         "seed must be an integer >= 0"),
        ("level = 0.01", "level = nan", "data.noise.level", "expected a finite number, got nan"),
        ("std = 1.0, seed = 0", "std = inf, seed = 0", "layers.0.weights.std",
         "expected a finite number, got inf"),
        ('where = "pre_activation"', 'where = "input"', "data.noise.where", "where must be"),
        ('[model]\nfidelity = "bregman"', '[model]\nfidelity = "bregman"\nlam = 2.0', "model.lam",
         "has no λ or ρ"),
        ('[model]\nfidelity = "bregman"', '[model]\nfidelity = "bregman"\nrho = 5.0', "model.rho",
         "has no λ or ρ"),
        ('[model]\nfidelity = "bregman"', '[model]\nfidelity = "quadratic"\nrho = -1.0',
         "model.rho", "rho (the penalty ρ) must be a finite positive number, got -1.0"),
        ('[model]\nfidelity = "bregman"', '[model]\nfidelity = "bregman"\nlayer_weights = 10',
         "model.layer_weights", "this problem has one layer"),
        ('[model]\nfidelity = "bregman"', '[model]\nfidelity = "bregman"\nlayer_weights = true',
         "model.layer_weights", "expected number or array, got bool"),
        ('[model]\nfidelity = "bregman"',
         '[model]\nfidelity = "bregman"\nlayer_weights = [1, "2"]', "model.layer_weights",
         "expected a number or a list of numbers"),
    ],
)
def test_wrong_values_name_key_and_line(old, new, key, fragment):
    text = BASE.replace(old, new, 1)
    message = error(text)
    assert fragment in message
    assert f"line {line_of(text, new.splitlines()[-1])}: {key}" in message


TWO_LAYERS = BASE.replace("[data]", '''[[layers]]
type = "dense"
out = 32
activation = "relu"
weights = { distribution = "normal", std = 0.3, seed = 3 }
bias = { distribution = "constant", value = 1.0 }

[data]''', 1).replace('where = "pre_activation"', 'where = "output"')


@pytest.mark.parametrize(("value", "weights"), [("10", (10.0, 1.0)), ("[2, 3.5]", (2.0, 3.5))])
def test_layer_weights_weight_the_deep_model(value, weights):
    plain = parse(TWO_LAYERS)
    assert plain.problem.deep.weights == (1.0, 1.0)
    text = TWO_LAYERS.replace('[model]\nfidelity = "bregman"',
                              f'[model]\nfidelity = "bregman"\nlayer_weights = {value}')
    assert parse(text).problem.deep.weights == weights
    overridden = parse(TWO_LAYERS, overrides={"model.layer_weights": 10})
    assert overridden.problem.deep.weights == (10.0, 1.0)
    for bad, fragment in (("-1.0", "layer_weights"), ("[1, 2, 3]", "one γ_l per layer")):
        text = TWO_LAYERS.replace('[model]\nfidelity = "bregman"',
                                  f'[model]\nfidelity = "bregman"\nlayer_weights = {bad}')
        message = error(text)
        assert fragment in message
        assert f"line {line_of(text, 'layer_weights')}: model.layer_weights" in message


def test_missing_sections_and_keys():
    assert "missing required key 'layers'" in error(BASE[: BASE.index("[[layers]]")])
    text = BASE.replace('type = "dense"\n', "")
    assert "layers.0: missing required key 'layers.0.type'" in error(text)
    text = BASE.replace("weights = { distribution = \"normal\", std = 1.0, seed = 0 }\n", "")
    assert "missing required key 'layers.0.weights'" in error(text)
    text = BASE.replace('ground_truth = { image = "phantom" }\n', "")
    assert "give 'file' (measured data) or 'ground_truth'" in error(text)


def test_invalid_toml_reports_the_line():
    message = error(BASE.replace("out = 16", "out = = 16"))
    assert message.startswith("<string>: invalid TOML:")
    assert f"line {line_of(BASE, 'out = 16')}, column 7" in message


def test_unknown_top_level_table():
    text = BASE + "\n[optimizer]\nname = 'adam'\n"
    message = error(text)
    assert f"line {line_of(text, '[optimizer]')}: optimizer: unknown key 'optimizer'" in message


def test_missing_weight_file_names_key_and_line(tmp_path):
    text = BASE.replace('{ distribution = "normal", std = 1.0, seed = 0 }', '{ file = "W.npy" }')
    message = error(text, base_dir=tmp_path, source="spec.toml")
    assert f"spec.toml, line {line_of(text, 'W.npy')}: layers.0.weights.file" in message
    assert "file not found" in message and str(tmp_path / "W.npy") in message


def test_weight_file_with_the_wrong_shape(tmp_path):
    np.save(tmp_path / "W.npy", np.ones((16, 63)))
    text = BASE.replace('{ distribution = "normal", std = 1.0, seed = 0 }', '{ file = "W.npy" }')
    message = error(text, base_dir=tmp_path)
    assert "layers.0.weights.file" in message and "(16, 63)" in message and "(16, 64)" in message


def test_weights_from_npz_and_npy_files(tmp_path):
    W = np.arange(16 * 64, dtype=float).reshape(16, 64) / 1000
    np.savez(tmp_path / "net.npz", W=W, b=np.ones(16))
    np.save(tmp_path / "b.npy", np.full(16, 2.0))
    text = BASE.replace('{ distribution = "normal", std = 1.0, seed = 0 }',
                        '{ file = "net.npz", key = "W", scale = 2.0 }').replace(
        '{ distribution = "normal", std = 1.0, seed = 1 }', '{ file = "b.npy" }')
    spec = parse(text, base_dir=tmp_path)
    np.testing.assert_array_equal(spec.network.W, 2 * W)
    np.testing.assert_array_equal(spec.network.b, np.full(16, 2.0))
    ambiguous = text.replace(', key = "W"', "")
    assert "holds ['W', 'b']; name one with 'key'" in error(ambiguous, base_dir=tmp_path)
    assert "has no array 'V'" in error(text.replace('key = "W"', 'key = "V"'), base_dir=tmp_path)


def test_pickled_arrays_are_refused(tmp_path):
    np.save(tmp_path / "W.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    text = BASE.replace('{ distribution = "normal", std = 1.0, seed = 0 }', '{ file = "W.npy" }')
    message = error(text, base_dir=tmp_path)
    assert "cannot read W.npy" in message and "pickle" in message


def test_data_from_files(tmp_path):
    spec = parse(BASE)
    np.save(tmp_path / "f.npy", spec.data)
    text = BASE.replace('noise = { kind = "gaussian", level = 0.01, where = "pre_activation", '
                        'seed = 2 }', 'file = "f.npy"')
    from_file = parse(text, base_dir=tmp_path)
    np.testing.assert_array_equal(from_file.data, spec.data)
    np.testing.assert_array_equal(from_file.ground_truth, spec.ground_truth)
    assert from_file.noise is None

    np.save(tmp_path / "f.npy", np.ones(15))
    message = error(text, base_dir=tmp_path)
    assert "data.file" in message and "(15,)" in message and "(16,)" in message

    np.save(tmp_path / "f.npy", -np.ones(16))
    message = error(text, base_dir=tmp_path)
    assert "data:" in message and "dom" in message.lower()


def test_data_from_an_image_file(tmp_path):
    from PIL import Image

    pixels = (np.arange(16).reshape(4, 4) * 16).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "f.png")
    text = BASE.replace('ground_truth = { image = "phantom" }\nnoise = { kind = "gaussian", '
                        'level = 0.01, where = "pre_activation", seed = 2 }', 'file = "f.png"')
    spec = parse(text, base_dir=tmp_path)
    np.testing.assert_allclose(spec.data, pixels.ravel() / 255.0)
    assert spec.ground_truth is None


def test_noise_does_not_apply_to_measured_data(tmp_path):
    np.save(tmp_path / "f.npy", np.ones(16))
    text = BASE.replace('ground_truth = { image = "phantom" }', 'file = "f.npy"')
    assert "noise applies to generated data" in error(text, base_dir=tmp_path)


# --- quick and caller overrides ----------------------------------------------------------------


def test_bad_quick_override_is_reported_at_its_line_even_without_quick():
    text = BASE.replace('"layers.0.out" = 8', '"layers.3.out" = 8')
    message = error(text)
    assert f"line {line_of(text, 'layers.3.out')}: quick.layers.3.out" in message


def test_a_bad_value_from_quick_names_the_quick_line():
    text = BASE.replace('"layers.0.out" = 8', '"layers.0.out" = 8.5')
    parse(text)  # the value is used only with quick=True
    message = error(text, quick=True)
    assert f"line {line_of(text, 'layers.0.out')}: layers.0.out" in message
    assert "(value from [quick])" in message


def test_bad_caller_override():
    message = error(BASE, overrides={"solver.nope.x": 1})
    assert "override 'solver.nope.x' does not name an entry" in message
    message = error(BASE, overrides={"solver.tol": "fast"})
    assert "solver.tol: expected number" in message and "(value from the command line)" in message


# --- layer types --------------------------------------------------------------------------------


def test_residual_chain_with_values_and_v_options():
    text = """
    [input]
    shape = [2]

    [[layers]]
    type = "residual"
    width = 3
    activation = "relu"
    weights = { values = [[1, 0], [0, 1], [1, 1]] }
    bias = { distribution = "constant", value = -0.5 }

    [[layers]]
    type = "residual"
    activation = { name = "leaky_relu", slope = 0.5 }
    weights = { distribution = "uniform", low = -1, high = 1, seed = 3 }
    V = "-Wt"

    [data]
    ground_truth = { values = [0.3, -0.2] }
    """
    spec = parse(text)
    first, second = spec.network.layers
    assert isinstance(spec.network, Sequential)
    assert isinstance(first, Residual) and first.v_is_wt and first.W.shape == (3, 2)
    np.testing.assert_array_equal(first.b, [-0.5] * 3)
    assert isinstance(second.activation, LeakyReLU) and second.W.shape == (2, 2)
    np.testing.assert_array_equal(second.V, -second.W.T)
    np.testing.assert_allclose(spec.data, spec.network(np.array([0.3, -0.2])))
    assert spec.noise["level"] == 0.0 and spec.problem.fidelity == "quadratic"


def test_shallow_sum_with_linspace_biases_and_scalar_input():
    text = """
    [input]
    shape = []

    [[layers]]
    type = "shallow_sum"
    units = 25
    activation = "relu"
    weights = { distribution = "constant", value = 1.0 }
    bias = { distribution = "linspace", low = 0.0, high = -1.44 }
    coefficients = { distribution = "constant", value = 0.1 }

    [data]
    ground_truth = { values = 0.7 }
    """
    message = error(text)  # a bare number is not an array
    assert "data.ground_truth.values: expected array" in message
    spec = parse(text.replace("values = 0.7", "values = [0.7]"))
    layer = spec.network
    assert isinstance(layer, ShallowSum) and spec.input_shape == () and spec.output_shape == ()
    np.testing.assert_allclose(layer.b, -np.arange(25) * 3 / 50)
    expected = 0.1 * np.sum(np.maximum(0.7 - np.arange(25) * 0.06, 0))
    assert float(spec.data) == pytest.approx(expected)


def test_conv2d_layer_and_its_input_shape():
    truth = str([0.5] * 36)
    text = f"""
    [input]
    shape = [1, 6, 6]

    [[layers]]
    type = "conv2d"
    channels = 2
    kernel_size = 3
    padding = 1
    activation = "relu"
    weights = {{ distribution = "normal", seed = 0 }}

    [data]
    ground_truth = {{ values = {truth} }}
    noise = {{ level = 0.1, where = "pre_activation" }}
    """
    spec = parse(text)
    assert isinstance(spec.network, Conv2d) and spec.output_shape == (2, 6, 6)
    assert np.all(spec.data >= 0)
    message = error(text.replace("shape = [1, 6, 6]", "shape = [6, 6]"))
    assert "layers.0: a conv2d layer needs an input of shape [C, H, W]" in message


def test_layer_keys_are_checked_per_type_and_shapes_chain():
    text = BASE.replace("out = 16", "out = 16\nchannels = 2")
    assert "unknown key 'channels' in a dense layer (layers.0)" in error(text)
    text = BASE.replace("[data]", '[[layers]]\ntype = "residual"\nweights = { values = [[1.0]] }'
                                  "\n\n[data]")
    message = error(text)
    assert "layers.1.weights.values" in message and "expected shape (16, 16)" in message


def test_pre_activation_noise_needs_an_activation_in_the_last_layer():
    text = BASE.replace('activation = "relu"', 'activation = "identity"').replace(
        'fidelity = "bregman"', 'fidelity = "quadratic"')
    assert "'pre_activation' noise needs a last dense or conv2d layer" in error(text)


# --- solver options ----------------------------------------------------------------------------


def test_solver_options_are_checked_against_the_solver_signature():
    text = BASE.replace("max_iter = 50", "max_iter = 50\noptions = { tau = 0.01 }")
    assert parse(text).solver.kwargs()["tau"] == 0.01
    message = error(text.replace("tau = 0.01", "stepsize = 0.01"))
    assert "solver.options.stepsize: solver 'pdhg' has no option 'stepsize'" in message
    message = error(text.replace('name = "pdhg"', 'name = "auto"'))
    assert "solver.options: options belong to one solver" in message


# --- bundled specs -----------------------------------------------------------------------------


def test_bundled_specs_are_listed_and_resolved():
    specs = bundled_specs()
    assert {"perceptron-tv", "perceptron-tv-quadratic", "perceptron-bound"} <= set(specs)
    for name, (path, description) in specs.items():
        assert path.parent == SPEC_DIR and path.stem == name and description
        assert resolve_spec(name) == path == resolve_spec(f"{name}.toml")
    with pytest.raises(SpecError, match="no bundled spec of that name; bundled specs: "):
        resolve_spec("perceptron-tvv")


@pytest.mark.parametrize("name", sorted(bundled_specs()))
def test_every_bundled_spec_builds_in_quick_mode(name):
    spec = load_spec(resolve_spec(name), quick=True)
    assert spec.name == name and spec.quick
    batch = () if spec.problem.batch_size is None else (spec.problem.batch_size,)
    assert spec.ground_truth is not None and spec.problem.data.shape == batch + spec.output_shape


def test_perceptron_tv_is_the_talks_example_at_full_size():
    spec = load_spec(resolve_spec("perceptron-tv"))
    assert spec.input_shape == (64, 64) and spec.output_shape == (512,)
    assert spec.regularizer == f"{0.015 * 512:g}·tv"  # the per-output scaling convention
    assert spec.problem.fidelity == "bregman"
    W = spec.network.W
    assert abs(W.mean()) < 0.01 and W.std() == pytest.approx(1.0, abs=0.01)


def test_load_spec_of_a_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(tmp_path / "nope.toml")


def test_lines_are_located_after_a_multi_line_array():
    text = BASE.replace(
        'weights = { distribution = "normal", std = 1.0, seed = 0 }',
        "weights.values = [\n" + ",\n".join(["  [" + ", ".join(["0.1"] * 64) + "]"] * 16)
        + ",\n]\nbogus = 1",
    )
    message = error(text)
    assert f"line {line_of(text, 'bogus')}: layers.0.bogus: unknown key" in message


def test_a_transposed_weight_file_is_not_reshaped(tmp_path):
    np.save(tmp_path / "W.npy", np.ones((64, 16)))
    text = BASE.replace('{ distribution = "normal", std = 1.0, seed = 0 }', '{ file = "W.npy" }')
    message = error(text, base_dir=tmp_path)
    assert "has shape (64, 16) (1024 entries), expected shape (16, 64)" in message
    np.save(tmp_path / "W.npy", np.ones((1, 16, 64)))
    assert parse(text, base_dir=tmp_path).network.W.shape == (16, 64)


def test_grey_convolution_input_takes_a_builtin_image_and_total_variation():
    text = BASE.replace("shape = [8, 8]", "shape = [1, 8, 8]").replace(
        'type = "dense"\nout = 16',
        'type = "conv2d"\nchannels = 2\nkernel_size = 3\npadding = 1',
    ).replace('bias = { distribution = "normal", std = 1.0, seed = 1 }\n', "")
    spec = parse(text)
    assert spec.ground_truth.shape == (1, 8, 8)
    np.testing.assert_array_equal(spec.ground_truth[0], phantom(8))
    assert spec.problem.reg.shape == (8, 8)  # TV on the grey image
    u, _ = spec.problem.lifted.forward(spec.ground_truth)
    assert np.isfinite(spec.problem.objective(u))
    with pytest.raises(SpecError, match=r"tv needs a 2-D input \[H, W\] or \[1, H, W\]"):
        parse(text.replace("shape = [1, 8, 8]", "shape = [2, 8, 8]").replace(
            'ground_truth = { image = "phantom" }',
            f"ground_truth = {{ values = {np.full((2, 8, 8), 0.5).tolist()} }}"))


def test_a_directory_is_not_called_a_missing_spec(tmp_path):
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(SpecError, match="d.toml: is a directory, not a spec file"):
        resolve_spec(tmp_path / "d.toml")


def test_per_output_scale_that_overflows_names_the_scale():
    text = BASE.replace('expr = "0.1 * tv"', 'expr = "1e308 * tv"\nscale = "per_output"')
    message = error(text)
    assert f"line {line_of(text, 'scale =')}: regularizer.scale" in message
    assert "overflows to infinity" in message


# --- memory estimate (issue 16, item 3) ---------------------------------------------------------


def test_memory_estimate_counts_weights_states_and_the_gram_matrix():
    raw = {"input": {"shape": [64, 64]}, "layers": [{"type": "dense", "out": 512}],
           "solver": {"name": "admm"}}
    n, m = 64 * 64, 512
    assert estimate_memory(raw) == (8 * (3 * m * n + 20 * (n + m) + 4 * m * m), "input.shape")
    raw["solver"]["name"] = "pdhg"  # no dense Gram matrix
    assert estimate_memory(raw)[0] == 8 * (3 * m * n + 20 * (n + m))
    raw["layers"][0]["out"] = 100_000
    assert estimate_memory(raw)[1] == "layers.0.out"


def test_a_spec_larger_than_the_available_memory_is_refused_before_allocating(monkeypatch):
    import bregmod.spec as spec_module

    monkeypatch.setattr(spec_module, "_available_memory", lambda: 2**20)  # 1 MiB
    text = BASE.replace("out = 16", "out = 4096")

    def forbidden(*args, **kwargs):
        raise AssertionError("weights drawn before the memory check")

    monkeypatch.setattr(spec_module, "_array", forbidden)
    message = error(text)
    assert f"line {line_of(text, 'out = 4096')}: layers.0.out" in message
    assert "needs about 0.0" in message and "GiB are available" in message
    monkeypatch.undo()
    monkeypatch.setattr(spec_module, "_available_memory", lambda: 2**20)
    assert parse(text, check_memory=False).output_shape == (4096,)
    monkeypatch.setattr(spec_module, "_available_memory", lambda: None)  # unknown: no check
    assert parse(text).output_shape == (4096,)


# --- comments and examples true to the code (issue 16, item 20) -------------------------------


def test_the_module_docstring_example_is_the_bundled_perceptron_tv():
    import re
    import tomllib

    import bregmod.spec as spec_module

    doc = spec_module.__doc__
    start = doc.index('    name = "perceptron-tv"')
    block = textwrap.dedent(doc[start:doc.index("Tables and keys")])
    assert tomllib.loads(block) == tomllib.loads(
        (SPEC_DIR / "perceptron-tv.toml").read_text(encoding="utf-8"))
    assert re.search(r"the bundled ``perceptron-tv``", doc)


@pytest.mark.parametrize("name", ["perceptron-tv"])
def test_the_solver_comment_of_a_bundled_spec_names_what_auto_picks(name):
    import re

    import numpy as np

    from bregmod.solvers import registry

    path = SPEC_DIR / f"{name}.toml"
    claim = re.search(r'solver = "auto" picks (\w+)', path.read_text(encoding="utf-8"))
    assert claim is not None
    spec = load_spec(path)
    assert spec.solver.name == "auto"
    assert registry.choose(spec.problem, np.float64)[0] == claim.group(1)


def test_a_bundled_name_wins_over_an_output_directory_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "perceptron-tv").mkdir()  # e.g. left by bregmod run perceptron-tv --out ...
    assert resolve_spec("perceptron-tv") == SPEC_DIR / "perceptron-tv.toml"


def test_output_noise_is_projected_inside_an_open_domain():
    """Softsign has dom Ψ = (−1, 1): projected output noise lies strictly inside (the
    activation's project_domain), so the Bregman fidelity accepts it (clipping onto ±1 did not)."""
    text = BASE.replace('activation = "relu"', 'activation = "softsign"').replace(
        'level = 0.01, where = "pre_activation"', 'level = 3.0, where = "output"')
    spec = parse(text, quick=True)
    data = spec.problem.data
    assert spec.noise["projected"]
    assert np.abs(data).max() < 1 and np.isclose(np.abs(data).max(), 1)


def test_regulariser_names_are_the_registry_of_bregmod_regularizers():
    from bregmod import regularizers
    from bregmod.spec import REGULARIZERS

    assert REGULARIZERS is regularizers.NAMES
