"""
A scenario's regular expressions, matched by RE2 (the ``google-re2`` package).

A scenario's regexes are searched in what ESMEs send (addresses, message
text).  Python's :mod:`re` backtracks: ``^(a+)+$`` against thirty ``a`` and
a ``b`` takes seconds, and against a long text longer than anyone waits,
with the reactor held all along.  RE2 never backtracks: its time is linear in
the text, whatever the pattern (at most about 17 ns per octet of text per
instruction of the pattern's program, the slowest we could make it; the
usual patterns cost nanoseconds per octet).  What only backtracking can do
(backreferences, lookaround) RE2 refuses, and so the loader refuses it, with
the reason: there is no fall-back to :mod:`re`.
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["Regex", "RegexError", "MAX_MEMORY"]

#: RE2's memory for one pattern: its program and the cache of its matching automaton
MAX_MEMORY = 1 << 20

_OPTIONS = re2.Options()
# a refused pattern is our user's error, said once in our own message: not a line from RE2 on stderr
_OPTIONS.log_errors = False
_OPTIONS.max_mem = MAX_MEMORY

#: what Python's re accepts and RE2 does not, said in the user's terms: (RE2's error starts with, hint)
_HINTS = (
    ("invalid perl operator: (?=", "lookahead is not supported"),
    ("invalid perl operator: (?!", "lookahead is not supported"),
    ("invalid perl operator: (?<", "lookbehind is not supported"),
    ("invalid perl operator: (?P", "backreferences ((?P=name)) are not supported"),
    ("invalid perl operator: (?>", "atomic groups are not supported"),
    ("invalid escape sequence: \\Z", "write \\z for the end of the text"),
    ("bad repetition operator: ++", "possessive repeats are not supported"),
    ("bad repetition operator: *+", "possessive repeats are not supported"),
    ("bad repetition operator: ?+", "possessive repeats are not supported"),
    ("pattern too large", f"its program needs more than RE2's {MAX_MEMORY >> 20} MiB"),
    ("invalid perl operator: (?", "only the flags i, m, s and U are supported"),
)
_BACKREFERENCE = "invalid escape sequence: \\"


class RegexError(ValueError):
    """A pattern RE2 cannot compile; the message says why, in one line."""


def _reason(error: Exception) -> str:
    raw = error.args[0] if error.args else ""
    said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    hint = next((hint for start, hint in _HINTS if said.startswith(start)), None)
    escaped = said[len(_BACKREFERENCE) : len(_BACKREFERENCE) + 1]
    if hint is None and said.startswith(_BACKREFERENCE) and escaped.isdigit():
        hint = "backreferences are not supported"
    if hint is not None:
        return f"{said} ({hint}: scenario regexes are RE2's, see docs/scenarios.md)"
    return said


class Regex:
    """
    One compiled pattern.

    :param pattern: RE2 syntax (Python's, less backreferences and lookaround).
    :raises RegexError: RE2 refuses the pattern.
    """

    __slots__ = ("pattern", "program_size", "_compiled")

    def __init__(self, pattern: str) -> None:
        try:
            compiled = re2.compile(pattern, _OPTIONS)
        except re2.error as e:
            raise RegexError(_reason(e)) from None
        self.pattern = pattern
        #: RE2's instructions for it: what matching costs per octet of text, at worst
        self.program_size: int = compiled.programsize
        self._compiled: Any = compiled

    def found_in(self, text: str) -> bool:
        """Whether the pattern matches somewhere in ``text`` (``re.search``)."""
        # as UTF-8 octets: the same match as with the str (RE2 reads UTF-8 either way), without
        # the wrapper's mapping of octet offsets back to characters, which a yes or no does not need
        return self._compiled.search(text.encode("utf-8", "surrogatepass")) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Regex, (self.pattern,))
