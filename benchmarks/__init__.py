"""The performance suite: each benchmark measures the project against a floor or a peer in the same run.

Shared machines are noisy, so nothing here asserts an absolute time: every benchmark repeats its
measurement, reports the median and spread, and states its target as a ratio (see docs/development.md).
"""
