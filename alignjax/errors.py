"""The base of alignjax's own errors: CLIs catch `AlignjaxError` and print one `error:` line."""


class AlignjaxError(Exception):
    """An error alignjax reports to the user in one line (bad input, a file or setting that does not fit)."""
