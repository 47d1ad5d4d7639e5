"""The one error base every package raises for bad input, so the CLI can print one line."""


class FastscaleError(ValueError):
    """Bad input or an impossible request; the message says what was wrong and what is allowed."""
