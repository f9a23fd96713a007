"""A non-editable install ships what the service reads from its package at run time: the
migrations and the console's templates and static files (`[tool.setuptools.package-data]`)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
# The venv's setuptools, without fetching anything: the test checks our configuration.
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet")
DATA = (
    "infrastructure/migrations",
    "interfaces/http/console/templates",
    "interfaces/http/console/static",
)


def test_the_wheel_holds_every_migration_template_and_static_file(tmp_path):
    subprocess.run(
        [*PIP_WHEEL, str(ROOT), "--wheel-dir", str(tmp_path)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("invsync-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        path.relative_to(ROOT).as_posix()
        for folder in DATA
        for path in (ROOT / folder).iterdir()
        if path.is_file() and path.suffix != ".py"
    }
    assert wanted
    assert wanted <= shipped, sorted(wanted - shipped)
