"""The Bytewax dataflow and its runtime: ``dataflow`` (the one flow every mode runs), ``live``
(``riverrun run``), shards, recovery, sources and sinks, Prometheus metrics. The only package that
wires Bytewax operators; it imports ``core`` for every decision and ``kafka`` for the clients."""
