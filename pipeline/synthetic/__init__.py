"""Synthetic dl-cdn logs for demos, tests and benchmarks, and the data they are drawn from."""
