"""Decoding stored events with orjson: the same bytes, the same objects, several times faster.

The library's `JSONTranscoder` decodes with the standard `json` module and a Python object hook
per dict, which makes decoding the largest cost of reading the ledger back (replays, rebuilds,
loading an item). Encoding is left to the library, so what is stored does not change.

Where orjson would answer differently, the library decodes instead: documents orjson refuses
(NaN, infinities, lone surrogates), and integers beyond 64 bits, which orjson parses as floats
without complaint (any float that large sends the whole document to the library).
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

# orjson parses integers in [-2**63, 2**64) exactly; beyond, it gives floats of at least this.
_INEXACT = float(2**63)


class _Inexact(Exception):
    """A float orjson may have made of an integer it could not hold: decode the library's way."""


class OrjsonTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        try:
            parsed = orjson.loads(data)
            kind = type(parsed)
            if kind is dict or kind is list:
                return self._revive(parsed)
            if kind is float and not -_INEXACT < parsed < _INEXACT:
                raise _Inexact
            return parsed
        except (orjson.JSONDecodeError, _Inexact):
            return super().decode(data)

    def _revive(self, value: Any) -> Any:
        """Turn `{"_type_": name, "_data_": data}` objects back into values, innermost first,
        as the library's object hook does. Raises `_Inexact` on a float orjson may have made
        of an integer beyond 64 bits."""
        if type(value) is list:
            for index, item in enumerate(value):
                kind = type(item)
                if kind is dict or kind is list:
                    value[index] = self._revive(item)
                elif kind is float and not -_INEXACT < item < _INEXACT:
                    raise _Inexact
            return value
        for key, item in value.items():
            kind = type(item)
            if kind is dict:
                if (
                    len(item) == 2
                    and type(item.get("_type_")) is str
                    and type(item.get("_data_")) is str
                ):
                    value[key] = self._transcoded(item)  # the common case: a leaf, at once
                else:
                    value[key] = self._revive(item)
            elif kind is list:
                value[key] = self._revive(item)
            elif kind is float and not -_INEXACT < item < _INEXACT:
                raise _Inexact
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return self._transcoded(value)
        return value

    def _transcoded(self, value: dict[str, Any]) -> Any:
        """The value a `{"_type_", "_data_"}` pair stands for; like the library, a name no
        transcoding is registered under (null, a number) is refused."""
        name = value["_type_"]
        try:
            transcoding = self.names[name]
        except KeyError:
            raise TranscodingNotRegisteredError(
                f"Data serialized with name '{name}' is not deserializable. "
                "Please register a custom transcoding for this type."
            ) from None
        return transcoding.decode(value["_data_"])
