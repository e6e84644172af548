"""What the tests share; the test files hold tests only and import from here.

- ``ports``: ``free_port`` (the one way to find a free TCP port).
- ``kafka``: fresh topics and their config file (``fresh_settings``), ``riverrun models``, topic
  readers (``TopicReader``; ``PredictionReader`` keeps first copies and checks duplicates).
- ``flows``: ``riverrun run`` as subprocesses: ``Flow`` (one process), ``FlowCluster`` (a Bytewax
  cluster or shards), one environment for both (``flow_env``); the operator-rollback scenario.
- ``crash``: the crash harness (SIGKILL loops and final-state comparison); its command is
  ``scripts/crash_harness.py``.
- ``registry``: the registry fixtures (a pytest plugin) and model/attack helpers.
- ``metrics``: reading and scraping Prometheus expositions; ``prometheus``: a real Prometheus;
  ``promql``: the series a PromQL expression reads.
- ``oracle``: River's own reference loop and stream files; ``segments``: a segmented stream and an
  in-process flow; ``badinput``: the malformed-record corpus (also used by
  ``benchmarks/bad_input.py``) and the bad-input replay.
- ``text``: small text helpers.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
