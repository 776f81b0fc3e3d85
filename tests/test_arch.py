"""The layers spec ("conv5x16,pool2,conv5x32,pool2,dense128"): one parser, one config, presets."""

from __future__ import annotations

import pytest

from scribblenet import cli
from scribblenet.config import (
    MAX_ACTIVATION_FLOATS,
    MAX_CHANNELS,
    MAX_KERNEL,
    ConvLayer,
    NetworkConfig,
    conv_layer,
)
from scribblenet.hyperparams import (
    FIELDS,
    MAX_BROWSER_FLOPS,
    PRESETS,
    form_values,
    parse_field,
    parse_settings,
    preset_configs,
    settings_schema,
)

CNN = "conv5x16,pool2,conv5x32,pool2,dense128"

# ── one parser for the page and the command line ────────────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "layers"),
    [(CNN, ("conv5x16", "pool2", "conv5x32", "pool2", 128)),
     ("dense128", (128,)), ("dense256, 128", (256, 128)),
     ("CONV3x32Same pool2 64", ("conv3x32same", "pool2", 64)),
     ("conv5x16valid,conv05x8", ("conv5x16", "conv5x8")),  # normalised spellings
     ("conv3x4,pool2,pool2", ("conv3x4", "pool2", "pool2")),
     ("conv28x3", ("conv28x3",)), ("conv1x1same", ("conv1x1same",)),
     (["conv3x4", "dense10"], ("conv3x4", 10))],
)  # fmt: skip
def test_specs_parse_to_conv_tokens_then_dense_sizes(text, layers) -> None:
    assert parse_field("hidden", text) == layers
    network, _, errors = parse_settings({"hidden": text})
    assert errors == {}
    assert network.conv == tuple(v for v in layers if isinstance(v, str))
    assert network.hidden == tuple(v for v in layers if isinstance(v, int))


@pytest.mark.parametrize(
    ("text", "message"),
    [("conv5", "layer 'conv5' is not understood: use whole numbers"),
     ("64,abc", "layer 'abc' is not understood"),
     ("conv5x16,128,conv3x8", "conv3x8 comes after the dense layer 128: conv and pool layers"),
     ("dense64,pool2", "pool2 comes after the dense layer dense64"),
     ("pool2,128", "pool2 must follow a conv layer"),
     ("conv29x4", f"conv29x4: the kernel size must be from 1 to {MAX_KERNEL}"),
     ("conv0x4", "the kernel size must be from 1 to"),
     ("conv3x257", f"conv3x257: the channels must be from 1 to {MAX_CHANNELS}"),
     ("conv3x" + "9" * 40, "the channels must be from 1 to"),
     ("conv3x4,pool1", "pool1: the pool size must be from 2 to"),
     ("conv9x4,pool2,conv9x4,conv3x4", "conv3x4 shrinks the 2×2 image below 1×1"),
     ("conv3x4,pool2,pool2,pool2,pool2,pool2", "pool2 shrinks the 1×1 image below 1×1"),
     (",".join(["conv1x1"] * 9), "at most 8 conv layers are allowed, got 9"),
     ("conv3x256same,conv28x256same", f"at most {MAX_ACTIVATION_FLOATS:,} are allowed"),
     ("0", "hidden layer size must be an integer from 1 to 4096"),
     ("conv3x4,dense5000", "hidden layer size must be an integer from 1 to 4096")],
)  # fmt: skip
def test_bad_specs_say_what_is_wrong_in_one_line(text, message, capsys) -> None:
    with pytest.raises(ValueError) as raised:
        parse_field("hidden", text)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert parse_settings({"hidden": text}).errors == {"hidden": str(raised.value)}
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--arch", text])
    assert str(raised.value) in capsys.readouterr().err  # the CLI says exactly the same


def test_a_network_too_slow_for_a_tab_is_refused_there_only() -> None:
    vgg = "conv3x64same,conv3x64same,pool2,conv3x128same,conv3x128same,pool2,256"
    errors = parse_settings({"hidden": vgg}).errors
    assert "million operations per image" in errors["hidden"]
    assert f"at most {MAX_BROWSER_FLOPS // 10**6} million" in errors["hidden"]
    assert parse_settings({"hidden": vgg}, max_parameters=None, max_flops=None).ok


def test_arch_and_layers_are_aliases_of_hidden() -> None:
    parser = cli.build_parser()
    for flag in ("--hidden", "--arch", "--layers"):
        assert parser.parse_args(["train", flag, CNN]).hidden == CNN
    layers = next(f for f in FIELDS if f.name == "hidden")
    assert layers.label == "Layers" and "conv5x16" in layers.help


# ── the config: tokens, shapes, counts, and the dicts model files store ─────────────────────


def test_conv_layer_tokens() -> None:
    assert conv_layer("conv5x16") == ConvLayer("conv", 5, 16, "valid")
    assert conv_layer("conv3x32same").token == "conv3x32same"
    assert conv_layer("pool2") == ConvLayer("pool", 2)
    assert conv_layer("conv5x16").output_shape((28, 28, 1)) == (24, 24, 16)
    assert conv_layer("conv3x8same").output_shape((7, 7, 4)) == (7, 7, 8)
    assert conv_layer("pool2").output_shape((7, 7, 4)) == (3, 3, 4)
    for bad in ("conv", "Conv5x16", "pool", 5, None):
        with pytest.raises(ValueError, match="not understood"):
            conv_layer(bad)


def test_cnn_config_shapes_counts_and_names() -> None:
    c = NetworkConfig(conv=["conv5x16", "pool2", "conv5x32", "pool2"])
    assert c.conv == ("conv5x16", "pool2", "conv5x32", "pool2")  # a list becomes a tuple
    assert c.conv_shapes() == [(28, 28, 1), (24, 24, 16), (12, 12, 16), (8, 8, 32), (4, 4, 32)]
    assert c.sizes == (512, 128, 10)
    assert c.spec == CNN and c.architecture == "28x28-conv5x16-pool2-conv5x32-pool2-512-128-10"
    assert c.parameter_shapes() == {
        "conv1_W": (25, 16), "conv1_b": (16,), "conv2_W": (400, 32), "conv2_b": (32,),
        "W1": (512, 128), "b1": (128,), "W2": (128, 10), "b2": (10,),
    }  # fmt: skip
    assert c.n_parameters == 416 + 12_832 + 65_664 + 1_290
    # 6 flops per use of a weight: conv weights once per output pixel.
    conv_uses = (25 * 16 + 16) * 24 * 24 + (400 * 32 + 32) * 8 * 8
    assert c.flops_per_example == 6 * (conv_uses + 65_664 + 1_290)


def test_mlp_config_is_as_before_convolutions() -> None:
    c = NetworkConfig(hidden=(256, 128))
    assert "conv" not in c.to_dict()  # so MLP model files are byte-for-byte as before
    assert c.sizes == (784, 256, 128, 10) and c.architecture == "784-256-128-10"
    assert c.spec == "256,128" and NetworkConfig(hidden=()).spec == ""
    assert list(c.parameter_shapes()) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert c.flops_per_example == 6 * c.n_parameters
    assert c.activation_floats_per_example == 784 + 3 * (256 + 128 + 10)
    assert NetworkConfig.from_dict({**c.to_dict(), "conv": []}) == c


def test_cnn_config_round_trips_through_its_dict() -> None:
    c = NetworkConfig(conv=("conv3x8same", "pool2", "conv3x16"), hidden=(), dtype="float64")
    d = c.to_dict()
    assert d["conv"] == ["conv3x8same", "pool2", "conv3x16"]
    assert NetworkConfig.from_dict(d) == c


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"conv": "conv5x16"}, "conv must be a list"),
     ({"conv": ("conv5x16", 3)}, "not understood"),
     ({"conv": ("conv3x4",), "n_inputs": 783}, "need square images"),
     ({"conv": ("conv5x4",), "n_inputs": 16}, "conv5x4 shrinks the 4×4 image below 1×1")],
)  # fmt: skip
def test_bad_cnn_configs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        NetworkConfig(**kwargs)


# ── presets and the page's form ─────────────────────────────────────────────────────────────


def test_cnn_preset_is_offered_everywhere_and_round_trips() -> None:
    cnn = next(p for p in PRESETS if p.key == "cnn")
    assert cnn.in_page and cnn.values["hidden"] == CNN
    network, train = preset_configs("cnn")
    assert network.conv == ("conv5x16", "pool2", "conv5x32", "pool2") and network.hidden == (128,)
    assert form_values(network, train)["hidden"] == CNN  # the page sees the preset's own text
    assert parse_settings(cnn.values).ok  # within a tab's limits
    assert "cnn" in [p["key"] for p in settings_schema()["presets"]]
    assert cli.build_parser().parse_args(["train", "--preset", "cnn"]).preset == "cnn"
