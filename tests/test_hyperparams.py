"""The one hyperparameter schema: parsing, presets, the page's JSON and the CLI built from it."""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from scribblenet import cli
from scribblenet.config import ACTIVATIONS, DTYPES, INITS, NetworkConfig, TrainConfig
from scribblenet.hyperparams import (
    FIELDS,
    MAX_BROWSER_PARAMETERS,
    PAGE_PRESET,
    PRESETS,
    batch_size_error,
    form_values,
    n_parameters,
    parse_field,
    parse_settings,
    preset_configs,
    settings_schema,
)
from scribblenet.tutorial import NeuralNetwork
from session_helpers import tiny_mnist

# ── one parser ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "layers"),
    [("128", (128,)), ("256,128", (256, 128)), ("128 64", (128, 64)), ("12 8", (12, 8)),
     (" 32, 16 ", (32, 16)), ("", ()), ("none", ()), ([64, "32"], (64, 32))],
)  # fmt: skip
def test_hidden_layers_read_the_same_everywhere(text, layers) -> None:
    assert parse_field("hidden", text) == layers
    settings = parse_settings({"hidden": text})
    assert settings.ok and settings.network.hidden == layers


@pytest.mark.parametrize("full", ["full", "FULL", " all ", "", None])
def test_full_batch_spellings(full) -> None:
    _, train, errors = parse_settings({"batch_size": full})
    assert errors == {}
    assert train.batch_size is None


@pytest.mark.parametrize("zero", ["0", 0, "-3", "+0"])
def test_batch_size_zero_is_an_error_not_full_batch(zero) -> None:
    _, train, errors = parse_settings({"batch_size": zero})
    assert train is None
    assert "batch size must be at least 1" in errors["batch_size"]
    assert "'full'" in errors["batch_size"]  # says how to ask for full batch


def test_empty_hidden_is_softmax_regression() -> None:
    network, _, errors = parse_settings({"hidden": ""})
    assert errors == {}
    assert network.hidden == ()


def test_unknown_field_is_reported() -> None:
    assert "colour" in parse_settings({"colour": "red"}).errors


def test_network_too_big_for_a_tab() -> None:
    errors = parse_settings({"hidden": "2048,2048"}).errors
    assert f"{MAX_BROWSER_PARAMETERS:,}" in errors["hidden"]
    assert parse_settings({"hidden": "2048,2048"}, max_parameters=None).ok  # natively it fits


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("hidden", "12x", "whole numbers"), ("hidden", "1" * 12, "from 1 to 4096"),
     ("hidden", "0", "hidden layer size must be an integer from 1 to 4096"),
     ("learning_rate", "-1", "learning rate must be > 0"), ("epochs", "1.5", "whole number"),
     ("activation", "swish", "relu"), ("momentum", "nan", "finite"), ("seed", "9" * 30, "large")],
)  # fmt: skip
def test_bad_value_has_one_message_everywhere(name, value, message, capsys) -> None:
    with pytest.raises(ValueError) as raised:
        parse_field(name, value)
    assert message in str(raised.value)
    assert parse_settings({name: value}).errors == {name: str(raised.value)}
    spec = next(f for f in FIELDS if f.name == name)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", spec.flag, value])
    assert str(raised.value) in capsys.readouterr().err  # the CLI says exactly the same


def test_batch_size_checked_against_the_training_set_once() -> None:
    train = TrainConfig(batch_size=300)
    assert batch_size_error(train, 200) == "batch size must be at most 200 (the training set size)"
    assert batch_size_error(train, 300) is None
    assert batch_size_error(TrainConfig(batch_size=None), 1) is None


# ── the schema covers the configs, the presets are complete and valid ─────────────────────


def test_every_config_field_but_the_data_shape_is_a_setting() -> None:
    names = {f.name for f in FIELDS}
    config_fields = {f.name for f in fields(NetworkConfig)} | {f.name for f in fields(TrainConfig)}
    # "conv" too: the layers field sets both conv and hidden ("conv5x16,pool2,dense128").
    assert names == config_fields - {"n_inputs", "n_classes", "conv"}
    choices = {f.name: {v for v, _ in f.choices} for f in FIELDS}
    assert choices["activation"] == set(ACTIVATIONS)
    assert choices["init"] == set(INITS)
    assert choices["dtype"] == set(DTYPES)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.key)
def test_each_preset_sets_every_field_and_round_trips(preset) -> None:
    assert set(preset.values) == {f.name for f in FIELDS}
    network, train = preset_configs(preset.key)
    assert parse_settings(form_values(network, train), max_parameters=None) == (
        network,
        train,
        {},
    )
    if preset.in_page:
        assert n_parameters(network) <= MAX_BROWSER_PARAMETERS


def test_tutorial_preset_is_the_tutorials_exact_configuration(rng) -> None:
    network, train = preset_configs("tutorial")
    data = tiny_mnist(rng, n_train=20, n_test=10)
    X = data.X_train.astype(np.float64) / 255
    ann = NeuralNetwork([50, 10]).fit(X, np.eye(10)[data.y_train], 0.1, 1, verbose=False)
    assert ann.network.config == network
    assert (train.optimizer, train.learning_rate, train.batch_size) == ("sgd", 0.1, None)
    assert (train.epochs, train.lr_schedule, train.weight_decay) == (100, "constant", 0.0)
    assert network.dtype == "float64"  # the tutorial's precision, in the page as well


def test_page_schema_is_json_and_names_only_known_fields() -> None:
    schema = json.loads(json.dumps(settings_schema()))
    names = [f["name"] for f in schema["fields"]]
    assert names == [f.name for f in FIELDS]
    keys = [p["key"] for p in schema["presets"]]
    assert keys[-1] == "custom" and schema["initial_preset"] == PAGE_PRESET in keys
    assert "pretrained" not in keys  # command line only: the page cannot augment
    for preset in schema["presets"][:-1]:
        assert parse_settings(preset["values"]).ok
    for f in schema["fields"]:
        parse_field(f["name"], f["default"])
        for choice in f["choices"]:
            parse_field(f["name"], choice["value"])


# ── the command line is built from the same schema ─────────────────────────────────────────


def test_cli_reads_what_the_page_reads() -> None:
    args = cli.build_parser().parse_args(["train", "--hidden", "128 64", "--batch-size", "full"])
    overrides = {f.name: getattr(args, f.name) for f in FIELDS if getattr(args, f.name)}
    network, train = preset_configs(args.preset, **overrides)
    assert network.hidden == (128, 64)  # once one layer of 12,864 units
    assert train.batch_size is None
    assert network.activation == cli.DEFAULT_NETWORK.activation  # the rest from the preset


def test_cli_preset_and_aliases() -> None:
    args = cli.build_parser().parse_args(["train", "--preset", "tutorial", "--lr", "0.5"])
    network, train = preset_configs(args.preset, learning_rate=args.learning_rate)
    assert network.activation == "sigmoid" and train.learning_rate == 0.5


def test_cli_diverging_in_the_first_epoch_saves_nothing(monkeypatch, tmp_path, rng, capsys):
    monkeypatch.setattr(cli, "_load_data", lambda _: tiny_mnist(rng))
    out = tmp_path / "m.npz"
    status = cli.main(["train", "--hidden", "8", "--optimizer", "sgd", "--learning-rate", "1000",
                       "--epochs", "2", "--out", str(out)])  # fmt: skip
    assert status == 1 and not out.exists()
    assert "no model saved" in capsys.readouterr().err


def test_cli_trains_a_preset_with_overrides(monkeypatch, tmp_path, rng, capsys):
    monkeypatch.setattr(cli, "_load_data", lambda _: tiny_mnist(rng))
    out = tmp_path / "m.npz"
    assert cli.main(["train", "--preset", "quick", "--hidden", "12 8", "--out", str(out)]) == 0
    assert "Network(784-12-8-10" in capsys.readouterr().err


def test_page_presets_state_their_measured_time_and_accuracy() -> None:
    for preset in settings_schema()["presets"][:-1]:
        assert " s" in preset["note"] or "min" in preset["note"], preset
        assert "%" in preset["note"], preset
    slow = {p["key"]: p["caution"] for p in settings_schema()["presets"]}
    assert slow["tutorial"] and slow["quick"]  # slow or weak: they say so before they start
    assert not slow["fast"] and not slow["deep"]
