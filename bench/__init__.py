"""Benchmarks (`make bench`) and the chaos suite (`make chaos`); see bench/__main__.py."""
