"""The paper's validation protocol (docs/architecture.md, "Benchmark protocol"): activations ×
models × datasets × seeds, each cell a child run under one MLflow parent run, summarised as
medians over seeds with a sign test against a baseline. See docs/benchmark.md."""
