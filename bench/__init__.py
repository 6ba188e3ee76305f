"""emoreply's benchmarks, run from the repository root: ``python -m bench.run_all`` or ``python -m bench.<name>``."""
