"""The registration's one error type, in a leaf module: backends raise it, the keeper reports it."""


class RegistrationError(Exception):
    """An update that did not happen; one line naming the name, the server and the answer."""
