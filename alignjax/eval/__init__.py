"""Domain evaluators and the benchmark zoo."""
