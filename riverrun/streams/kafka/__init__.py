"""Every Kafka client in one place: ``admin`` (broker checks that fail fast, topics, partitions),
``config`` (librdkafka properties by client role), ``source`` (the dataflow's tailing source),
``range`` (a topic range for replay), ``producer`` (the acknowledged producer, publishing a
recorded stream), ``sink`` (the dataflow's Kafka sink), ``publishers`` (the gateway's producers).
Imports ``core`` for the records it yields and ``settings``, nothing of ``flow``."""
