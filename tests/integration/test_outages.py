"""What callers see while PostgreSQL is down: a retryable answer, never a crash."""

from starlette.testclient import TestClient

from domain.stock import ChangeKind
from infrastructure.embedded import EmbeddedPostgres
from infrastructure.postgres import check_database
from interfaces.composition import migrate, open_ledger
from interfaces.http.api import Api
from interfaces.http.app import create_app
from tests.helpers import change


def test_reads_answer_503_with_retry_after_while_the_database_is_down(tmp_path):
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    migrate(url)
    ledger = open_ledger(url)
    ledger.record(change(ChangeKind.RECEIPT, "down", 3))
    app = create_app(Api(ledger, probes={"database": lambda: check_database(url, timeout=1)}))
    try:
        server.stop()
        with TestClient(app) as client:
            answer = client.get("/api/v1/skus/other")
            ready = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["title"] == "Database unavailable"
        assert ready.status_code == 503
    finally:
        ledger.close()
        server.stop()
