from pathlib import Path

import pytest

from infrastructure.settings import Settings, SettingsError


def test_no_configuration_means_the_embedded_default():
    settings = Settings.from_env({})
    assert settings.embedded
    assert settings.database_url is None
    assert settings.data_dir == Path(".invsync").absolute()
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)


def test_configured_servers_are_used_as_given():
    settings = Settings.from_env(
        {
            "INVSYNC_DATABASE_URL": "postgresql://db/invsync",
            "INVSYNC_REDIS_URL": "redis://cache:6379/0",
            "INVSYNC_DATA_DIR": "/var/lib/invsync",
            "INVSYNC_HTTP_PORT": "9000",
        }
    )
    assert not settings.embedded
    assert settings.database_url == "postgresql://db/invsync"
    assert settings.data_dir == Path("/var/lib/invsync")
    assert settings.http_port == 9000


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_a_bad_port_is_named_in_the_error(port):
    with pytest.raises(SettingsError, match="INVSYNC_HTTP_PORT must be a port number"):
        Settings.from_env({"INVSYNC_HTTP_PORT": port})
