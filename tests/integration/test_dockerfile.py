"""The image's install, without a Docker engine: the files the Dockerfile copies, built as its
`pip install` builds them (a wheel: what pip installs from a source tree), hold the console's
templates and static files, the migrations and the Shopify sandbox's schema, so the installed
`invsync` in the image serves its pages."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE_DATA = ("interfaces/http/console/templates", "interfaces/http/console/static")


def _copied(dockerfile: str) -> list[str]:
    """The sources of the Dockerfile's COPY lines (into its WORKDIR)."""
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *given, _ = shlex.split(line.removeprefix("COPY "))
            sources += given
    return sources


def test_the_images_install_holds_the_consoles_pages_and_the_migrations(tmp_path):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir '.[sandbox]'" in dockerfile
    tree = tmp_path / "app"
    tree.mkdir()
    for source in _copied(dockerfile):
        copy = shutil.copytree if (ROOT / source).is_dir() else shutil.copy
        copy(ROOT / source, tree / source)
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel")]
    subprocess.run(
        [sys.executable, "-m", "pip", *build, str(tree)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "wheel").glob("invsync-*.whl")
    installed = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        str(path.relative_to(ROOT))
        for folder in PACKAGE_DATA
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
    }
    assert any(name.endswith(".html") for name in wanted)
    assert wanted - installed == set()
    assert "infrastructure/migrations/0001_baseline.sql" in installed
    assert "sandboxes/shopify/schema.graphql" in installed
