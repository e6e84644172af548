"""Everything that moves bytes, by responsibility (``README.md`` "Layout" has the whole map).

- ``core/``: the pure per-record logic the dataflow calls (ordering, features, join, model step).
- ``flow/``: the Bytewax dataflow, its runtime (``run``, shards, recovery), sources, sinks, metrics.
- ``kafka/``: every Kafka client: admin and topics, the tailing source, the range reader, producers.
- ``serving/``: the HTTP gateway and the online store.
- ``backtest/``: replay, its reports, the demo and the sample streams.
- ``cli/`` (the ``riverrun`` command, a module per command group) and ``settings.py`` (the configuration).
"""
