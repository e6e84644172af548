"""Backtests and the demo: ``replay`` (files or a Kafka range through the live dataflow),
``report``/``html_report`` (report.json, plots, report.html), ``progress``, ``demo``, and the sample
streams (``synth``, ``scenarios``)."""
