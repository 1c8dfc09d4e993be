"""Command-line programs: short mains over the library (the logic lives in modules that import cleanly in
Colab). Each is a `[project.scripts]` entry (`alignjax-train`, `alignjax-invert`, ...) and runs with
`python -m alignjax.cli.<name>`. Shared flag plumbing: `alignjax.cli._common`."""
