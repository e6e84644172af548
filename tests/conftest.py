"""Shared fixtures. Services come from the environment (.ci/run starts them through infra/)."""

from __future__ import annotations

import os

import pytest

# The shared helpers (tests/harness/) assert too: rewrite them like the tests.
pytest.register_assert_rewrite("tests.harness")

# Flows started by tests (in process or as subprocesses, several at once) serve their metrics on
# any free port; the metrics tests choose theirs.
os.environ.setdefault("RIVERRUN_METRICS__PORT", "0")

# Scripts that wrote the fixtures ran at older commits (see their READMEs): not test modules.
collect_ignore_glob = ["fixtures/*"]


def kafka_bootstrap() -> str | None:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("RIVERRUN_KAFKA__BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def kafka_servers() -> str:
    """The real broker. Missing in CI is a failure, not a skip: .ci/run starts one."""
    servers = kafka_bootstrap()
    if not servers:
        if os.environ.get("CI"):
            pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set; .ci/run must start Kafka (infra/)")
        pytest.skip("no Kafka: run `bash infra/services.sh start` and export KAFKA_BOOTSTRAP_SERVERS")
    return servers
