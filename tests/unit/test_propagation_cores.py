"""The propagation benchmark's split of the machine's cores between the sandboxes and invsync."""

from benchmarks.propagation import options, split_cores


def test_pinned_the_sandboxes_take_the_last_core_and_invsync_the_others():
    assert split_cores([0, 1], pin=True) == ([1], [0])
    assert split_cores([0, 1, 2, 3], pin=True) == ([3], [0, 1, 2])


def test_unpinned_or_on_one_core_nothing_is_pinned():
    assert split_cores([0, 1], pin=False) == (None, None)
    assert split_cores([0], pin=True) == (None, None)


def test_the_benchmark_pins_unless_told_not_to():
    assert options().parse_args([]).pin is True
    assert options().parse_args(["--no-pin"]).pin is False
