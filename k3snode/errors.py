"""The one base class of a user's mistake. Whatever derives from ``UserError`` (a setting, the K3s
config file, a command line) is printed by the CLI as its one-line message with exit status 2;
every other failure is a runtime failure (exit 1). A leaf module: the CLI can catch these without
importing the settings schema or the YAML merge."""


class UserError(Exception):
    """A mistake the user can fix; the message is one line naming where, what and the value."""


class UsageError(UserError):
    """A mistake in what the user asked for on the command line."""
