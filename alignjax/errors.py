"""The base of alignjax's own errors: CLIs catch `AlignjaxError` and print one `error:` line."""


class AlignjaxError(Exception):
    """An error alignjax reports to the user in one line (bad input, a file or setting that does not fit)."""


class CheckpointError(AlignjaxError, ValueError):
    """A checkpoint file is malformed, truncated, unsupported or unsafe.

    The message always names the file and, where relevant, the offending key, global or shape. (Also a
    `ValueError`, as it always was, so existing `except ValueError` clauses still catch it.)
    """


class InputError(AlignjaxError, ValueError):
    """An argument that cannot work: latents or images that do not fit a generator, models that are not
    aligned, a setting out of range. (A `ValueError` too, so `except ValueError` callers still catch it.)"""


class MissingEntryError(AlignjaxError, KeyError):
    """A file that exists but lacks what was asked of it: a checkpoint without the named network, an inversion
    folder without the named entries (also a `KeyError`, as it always was)."""

    __str__ = Exception.__str__  # the message as written (KeyError's own str quotes it)


class MissingFileError(AlignjaxError, FileNotFoundError):
    """A file the user named does not exist (also a `FileNotFoundError`, as it always was)."""
