"""`python -m alignjax.metrics`: the command line of alignjax/cli/metrics.py (`alignjax-metrics`)."""

from alignjax.cli.metrics import main

if __name__ == '__main__':
    raise SystemExit(main())
