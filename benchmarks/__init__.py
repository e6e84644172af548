"""The benchmarks, run from the repository root as modules: ``python -m benchmarks.NAME --help``
(they share ``benchstream`` and ``kafkabench``, and some use the tests' harness, ``tests/harness/``).
``peers/`` are run by ``compare`` in their own venvs, as files."""
