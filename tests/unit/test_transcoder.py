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
