"""``edgevid bench``: per-graph timing, end-to-end throughput and paced capture-to-label latency, memory,
accuracy against ground truth and saved compute, with the machine's context, as bench.json, bench.md and
plots (docs/bench.md). Heavy packages are imported inside functions."""
