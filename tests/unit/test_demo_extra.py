"""The demo's stores are imported only when the demo runs, and without the `sandbox` extra the
demo stops with one line saying what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interfaces.cli import serve
from interfaces.cli.common import CliError


@pytest.fixture
def without_graphql(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if graphql-core (of the `sandbox` extra) were not installed."""
    for name in [m for m in sys.modules if m == "sandboxes" or m.startswith("sandboxes.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "graphql", None)  # import graphql: ModuleNotFoundError


def test_the_cli_loads_without_the_sandbox_extra_and_imports_no_sandbox():
    script = (
        "import sys; sys.modules['graphql'] = None; import interfaces.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sandboxes'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


@pytest.mark.usefixtures("without_graphql")
def test_the_demo_without_the_sandbox_extra_is_one_line_naming_the_extra():
    with pytest.raises(CliError) as refused:
        serve._demo_stores()
    message = str(refused.value)
    assert "pip install 'invsync[sandbox]'" in message
    assert "graphql" in message
    assert "\n" not in message


def test_the_demo_stores_load_with_the_extra():
    assert serve._demo_stores().__name__ == "sandboxes.demo"
