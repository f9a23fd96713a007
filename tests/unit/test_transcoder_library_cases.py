"""The library's own transcoder test case (`eventsourcing.tests.persistence`), run against the
library's JSON transcoder and against ours: ours must pass whatever the library's passes."""

import os

import pytest
from eventsourcing.persistence import JSONTranscoder, Transcoder, UUIDAsHex

from infrastructure.transcoder import OrjsonTranscoder

try:
    from eventsourcing.tests import persistence as library_cases
except ModuleNotFoundError as missing:  # eventsourcing.tests imports pycryptodome
    if os.environ.get("CI"):
        raise  # CI runs these cases: a missing test dependency fails the run
    pytest.skip(f"the library's test cases need {missing.name}", allow_module_level=True)


# Both skip what the library's JSONTranscoder (9.5) does not do either: these cases are written for
# its successor, which keeps tuples and subclasses of dict, list, str and int.
_NOT_IN_9_5 = "the library's JSONTranscoder (9.5) turns tuples and subclasses into plain types"


class _LibraryTranscoderCases(library_cases.TranscoderTestCase):
    __test__ = False
    transcoder_class: type[JSONTranscoder] = JSONTranscoder

    def construct_transcoder(self) -> Transcoder:
        transcoder = self.transcoder_class()
        transcoder.register(library_cases.CustomType1AsDict())
        transcoder.register(library_cases.CustomType2AsDict())
        transcoder.register(UUIDAsHex())
        return transcoder

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_tuple(self) -> None: ...

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_mixed(self) -> None: ...

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_dict_subclass(self) -> None: ...

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_list_subclass(self) -> None: ...

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_str_subclass(self) -> None: ...

    @pytest.mark.skip(reason=_NOT_IN_9_5)
    def test_int_subclass(self) -> None: ...


class TestLibraryCasesOnTheLibrarysTranscoder(_LibraryTranscoderCases):
    __test__ = True
    transcoder_class = JSONTranscoder


class TestLibraryCasesOnOrjsonTranscoder(_LibraryTranscoderCases):
    __test__ = True
    transcoder_class = OrjsonTranscoder
