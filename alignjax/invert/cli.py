"""The inversion command line moved to `alignjax.cli.invert` (`alignjax-invert`, `python invert.py`); this module
keeps the old import path `from alignjax.invert.cli import main` working."""

from alignjax.cli.invert import check_aligned, load_generator, main

__all__ = ['check_aligned', 'load_generator', 'main']

if __name__ == '__main__':
    raise SystemExit(main())
