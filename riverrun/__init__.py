"""riverrun: streaming online learning on Kafka with Bytewax and River.

Layers (the one rule: deciding code is pure, I/O lives in ``streams``):

- ``riverrun.schemas``   data contracts (pydantic), JSON Schema export.
- ``riverrun.detectors`` drift detectors (pure).
- ``riverrun.learners``  model recipes, metrics, ``OnlineLearner`` (pure).
- ``riverrun.streams``   features, ordering, join, the Bytewax dataflow, Kafka and file I/O, CLI.
"""

__version__ = "0.1.0"
