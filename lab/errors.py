"""Base error of the lab: anything raised on purpose, with a message meant for the user."""


class LabError(Exception):
    """An error whose message says what went wrong and where; the CLI prints it in one line."""
