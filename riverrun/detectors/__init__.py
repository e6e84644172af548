"""Drift detectors (pure: numbers in, signals out). Filled in by the lifecycle work."""
