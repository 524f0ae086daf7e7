"""The Docs Assistant package: one subpackage per stage of the life cycle (see docs/pipeline/index.md)."""

import os

# OpenMP worker threads that spin while they wait made each generation of the tiny model about ten times
# slower on a busy machine (a CI runner, act's parallel jobs, a laptop): idle threads sleep instead. The
# OpenMP runtime reads this when torch loads, so it is set here, before any module of this package imports
# torch; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
