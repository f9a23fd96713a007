"""The numbered migration files as the package ships them."""

from infrastructure.migrations import migrations


def test_migrations_are_numbered_from_one_without_gaps():
    versions = [migration.version for migration in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_the_first_migration_is_the_baseline_of_the_release_before():
    first = migrations()[0]
    assert first.name == "baseline"
    assert "CREATE TABLE IF NOT EXISTS availability_outbox" in first.sql
