"""The one exception type that the CLI reports as a short message instead of a traceback."""


class UserInputError(Exception):
    """A problem with the user's data, weights or options, explained in words they can act on.

    Raised for missing or corrupt files, folders without data, and options that do not fit
    together. ``cli.py`` prints the message as one paragraph and exits with status 2.
    """
