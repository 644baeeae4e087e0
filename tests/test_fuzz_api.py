"""Property-based requests generated from our own OpenAPI schema: whatever a script sends, the server
answers with a clear status, never a 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from server.app import create_app
from server.config import Settings
from tests.conftest import fresh_database_url

# no background compiles: the fuzzer makes hundreds of short-lived sessions of random architectures
app = create_app(
    Settings(
        compile_cache_dir=None,
        database_url=fresh_database_url(),  # a database of its own, whichever worker collects this file
        max_sessions=10_000,
        max_sessions_per_client=10_000,
        warm_start=False,
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.include(path_regex=r"^/api/v1/(sessions|datasets|activations|optimizers|presets)").parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
