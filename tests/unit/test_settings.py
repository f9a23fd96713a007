from pathlib import Path

import pytest

from infrastructure.settings import HttpLimits, Settings, SettingsError


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


def test_one_http_process_by_default_and_as_many_as_the_environment_says():
    assert Settings.from_env({}).http_workers == 1
    assert Settings.from_env({"INVSYNC_HTTP_WORKERS": "4"}).http_workers == 4


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_a_bad_count_of_http_processes_is_named_in_the_error(workers):
    with pytest.raises(SettingsError, match="INVSYNC_HTTP_WORKERS"):
        Settings.from_env({"INVSYNC_HTTP_WORKERS": workers})


@pytest.mark.parametrize("port", ["http", "0", "70000", "-1"])
def test_a_bad_port_is_named_in_the_error(port):
    with pytest.raises(SettingsError, match="INVSYNC_HTTP_PORT must be a port number"):
        Settings.from_env({"INVSYNC_HTTP_PORT": port})


def test_http_limits_have_documented_defaults_and_are_read_from_the_environment():
    assert Settings.from_env({}).http == HttpLimits()
    assert HttpLimits().max_api_body_bytes == 1_048_576
    limits = Settings.from_env(
        {
            "INVSYNC_MAX_API_BODY_BYTES": "2048",
            "INVSYNC_BODY_TIMEOUT_SECONDS": "3",
            "INVSYNC_WEBHOOK_BODIES": "4",
            "INVSYNC_VERIFICATION_THREADS": "2",
            "INVSYNC_HTTP_LIMIT_CONCURRENCY": "50",
            "INVSYNC_HTTP_KEEP_ALIVE_SECONDS": "30",
            "INVSYNC_METRICS_SCOPE": "admin",
        }
    ).http
    assert limits == HttpLimits(2048, 3.0, 4, 2, 50, 30, "admin")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INVSYNC_MAX_API_BODY_BYTES", "lots"),
        ("INVSYNC_BODY_TIMEOUT_SECONDS", "0"),
        ("INVSYNC_WEBHOOK_BODIES", "-3"),
        ("INVSYNC_HTTP_LIMIT_CONCURRENCY", "9" * 5000),
        ("INVSYNC_METRICS_SCOPE", "write"),
    ],
)
def test_a_bad_http_limit_is_named_in_the_error(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_database_limits_default_to_ten_connections_a_pool_and_five_second_statements():
    limits = Settings.from_env({}).database
    assert (limits.pool_max, limits.statement_timeout_ms) == (10, 5000)


def test_database_limits_are_read_from_the_environment():
    limits = Settings.from_env(
        {"INVSYNC_DB_POOL_MAX": "3", "INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS": "2"}
    ).database
    assert (limits.pool_max, limits.statement_timeout_ms) == (3, 2000)
    off = Settings.from_env({"INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS": "0"}).database
    assert off.statement_timeout_ms is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INVSYNC_DB_POOL_MAX", "0"),
        ("INVSYNC_DB_POOL_MAX", "-1"),
        ("INVSYNC_DB_POOL_MAX", "ten"),
        ("INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS", "1.5"),
        ("INVSYNC_DB_STATEMENT_TIMEOUT_SECONDS", "-3"),
    ],
)
def test_a_bad_database_limit_is_refused_naming_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_consistency_targets_default_to_the_seeds_and_are_replaced_from_the_environment():
    assert Settings.from_env({}).consistency_targets == {
        "sale": 5.0,
        "return": 60.0,
        "adjustment": 300.0,
    }
    given = Settings.from_env({"INVSYNC_CONSISTENCY_TARGETS": " sale=2.5 , receipt=30"})
    assert given.consistency_targets == {"sale": 2.5, "receipt": 30.0}


@pytest.mark.parametrize(
    "value", ["sale", "sale=", "=5", "sale=five", "sale=0", "sale=nan", "sale=1e9"]
)
def test_a_bad_consistency_target_is_refused_with_an_example(value):
    with pytest.raises(SettingsError, match=r"INVSYNC_CONSISTENCY_TARGETS.*sale=5,return=60"):
        Settings.from_env({"INVSYNC_CONSISTENCY_TARGETS": value})


def test_the_metrics_port_and_host_are_read_from_the_environment():
    assert (Settings.from_env({}).metrics_port, Settings.from_env({}).metrics_host) == (
        None,
        "127.0.0.1",
    )
    given = Settings.from_env({"INVSYNC_METRICS_PORT": "9200", "INVSYNC_METRICS_HOST": "0.0.0.0"})
    assert (given.metrics_port, given.metrics_host) == (9200, "0.0.0.0")


@pytest.mark.parametrize("value", ["0", "65536", "http", "-1"])
def test_a_bad_metrics_port_is_refused_naming_the_variable(value):
    with pytest.raises(SettingsError, match="INVSYNC_METRICS_PORT must be a port number"):
        Settings.from_env({"INVSYNC_METRICS_PORT": value})
