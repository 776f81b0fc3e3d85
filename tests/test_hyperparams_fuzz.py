"""Fuzzing the settings parser: any form, or no form at all, gets messages, never an exception.

Moved from test_reliability.py as they were (only parse_config → parse_settings); to be folded
into test_hyperparams.py.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from scribblenet.hyperparams import parse_settings
from session_helpers import FORM

ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.binary(max_size=10),
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from([*FORM, "momentum", "weight_decay", "lr_schedule", "", "preset"])


@given(st.dictionaries(FIELD_NAMES | st.text(max_size=10), ANY_VALUE, max_size=12))
def test_parse_config_never_raises(form: dict) -> None:
    network, train, errors = parse_settings(form)
    assert (network is None) == (train is None) == bool(errors)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in errors.items())
    json.dumps(errors)


@given(ANY_VALUE)
def test_parse_config_of_a_non_dict_never_raises(form) -> None:
    if isinstance(form, dict):
        return
    assert parse_settings(form)[2]
