"""The pure per-record logic the dataflow calls: items, event-time ordering, features, the join,
the model step and its plain ``ModelView``. No Bytewax, no I/O: the same objects run live, in replay
and in unit tests. Imports ``schemas``, ``learners`` and ``detectors`` only, never the rest of
``streams``."""
