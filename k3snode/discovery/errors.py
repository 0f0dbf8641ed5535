"""Errors of the metadata path, in a module of their own so that recognising a cloud from DMI
(which imports every provider module) never imports the HTTP client."""

from __future__ import annotations


class MetadataError(Exception):
    """The metadata service gave no usable answer (unreachable, timed out, kept failing)."""


class MetadataTimeout(MetadataError):
    """A request got no (complete) answer within its read timeout."""


class MetadataUnreachable(MetadataError):
    """No connection could be made at all (no route, host unreachable, connect timed out)."""
