"""The orjson transcoder decodes exactly what the library's JSON transcoder decodes."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.transcoder import OrjsonTranscoder


def transcoders():
    made = []
    for transcoder in (JSONTranscoder(), OrjsonTranscoder()):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
        made.append(transcoder)
    return made


LIBRARY, ORJSON = transcoders()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_any_value_decodes_as_the_library_decodes_it(value):
    stored = LIBRARY.encode(value)
    assert ORJSON.decode(stored) == LIBRARY.decode(stored)


def test_an_event_state_decodes_to_the_same_objects():
    state = {
        "timestamp": datetime.now(UTC),
        "originator_id": uuid4(),
        "price": Decimal("9.99"),
        "lines": [{"at": datetime(2026, 1, 2, tzinfo=UTC)}, 3],
        "_type_": "kept",  # one key alone is no transcoded value
    }
    stored = LIBRARY.encode(state)
    assert ORJSON.decode(stored) == LIBRARY.decode(stored) == state


def test_what_orjson_refuses_falls_back_to_the_library():
    assert ORJSON.decode(b'{"n": NaN}')["n"] != ORJSON.decode(b'{"n": NaN}')["n"]  # nan != nan


def test_an_unregistered_transcoding_is_refused_as_by_the_library():
    stored = b'{"x":{"_type_":"nope","_data_":"1"}}'
    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.decode(stored)
    with pytest.raises(TranscodingNotRegisteredError):
        ORJSON.decode(stored)


# Integers beyond 64 bits: orjson parses them as floats instead of refusing them.
@pytest.mark.parametrize(
    "number", [2**64, 2**64 - 1, -(2**63) - 1, 10**30, -(10**40), 2**63, -(2**63)]
)
def test_an_integer_of_any_size_comes_back_an_exact_integer(number):
    stored = LIBRARY.encode({"n": number, "in": [number]})
    assert ORJSON.decode(stored) == {"n": number, "in": [number]}
    assert type(ORJSON.decode(stored)["n"]) is int
    assert ORJSON.decode(LIBRARY.encode(number)) == number


def test_a_large_float_stays_a_float():
    stored = LIBRARY.encode({"f": 1e19, "g": -3.5e30})
    assert ORJSON.decode(stored) == LIBRARY.decode(stored)
    assert type(ORJSON.decode(stored)["f"]) is float


def test_values_under_a_two_key_dict_with_a_string_data_key_are_decoded():
    when = datetime(2026, 1, 2, tzinfo=UTC)
    state = {"x": {"_data_": "a string", "at": when}, "y": [{"_data_": "s", "id": uuid4()}]}
    stored = LIBRARY.encode(state)
    assert ORJSON.decode(stored) == LIBRARY.decode(stored) == state


@pytest.mark.parametrize(
    "stored",
    [
        b'{"x":{"_type_":null,"_data_":"1"}}',
        b'{"_type_":null,"_data_":"1"}',
        b'{"x":{"_type_":1,"_data_":2}}',
    ],
)
def test_a_type_key_that_names_nothing_is_refused_as_by_the_library(stored):
    with pytest.raises(TranscodingNotRegisteredError):
        LIBRARY.decode(stored)
    with pytest.raises(TranscodingNotRegisteredError):
        ORJSON.decode(stored)


# Keys the transcoder gives meaning to, so generated dicts hit the two-key cases.
_KEYS = st.sampled_from(["_type_", "_data_", "a", "b"]) | st.text(max_size=4)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),  # around and beyond 64 bits
    st.integers(min_value=-(2**70), max_value=-(2**63) + 2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.uuids(),
    st.datetimes(timezones=st.just(UTC)),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_KEYS, inner, max_size=3)
        | st.fixed_dictionaries(
            {"_data_": st.text(max_size=3)}, optional={"_type_": _KEYS}
        ).flatmap(lambda d: st.builds(lambda k, v: {**d, k: v}, _KEYS, inner))
    ),
    max_leaves=10,
)


def _outcome(transcoder, stored):
    try:
        return "value", transcoder.decode(stored)
    except Exception as error:  # the same refusal counts as the same outcome
        return "error", type(error)


@given(_TREES)
def test_any_tree_with_transcoder_keys_decodes_as_the_library_decodes_it(value):
    stored = LIBRARY.encode(value)
    ours, theirs = _outcome(ORJSON, stored), _outcome(LIBRARY, stored)
    assert ours == theirs
    if ours[0] == "value":
        assert repr(ours[1]) == repr(theirs[1])  # same types too: 1 is not 1.0
