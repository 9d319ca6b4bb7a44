"""The one exception type users see: its message is a single line naming the file and the problem."""


class SkingenError(Exception):
    """A user-facing error (bad input, bad config, refused overwrite). The CLI prints it without a traceback."""
