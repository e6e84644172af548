"""Backtests and the demo: ``replay`` (files or a Kafka range through the live dataflow; ``inputs``
what it reads, ``replay_setup`` what its options configure), ``report``/``html_report``
(report.json, plots, report.html), ``progress``, ``demo``, and the streams to replay or publish
(``synth``, ``scenarios``, ``produce_input``)."""
