"""Translate the Oniguruma regex syntax that Logstash users paste into Python's.

Logstash (JRuby) compiles grok with Joni, a port of Oniguruma. Most of its
syntax is Python's too; these constructs are not, and are rewritten:

* ``\\h`` / ``\\H``: a hex digit / not one.
* POSIX bracket classes inside a class (``[[:alpha:]_]``) and nested classes
  (``[a-z[0-9]]``, a union in Oniguruma): flattened to plain ranges.
* Inline options in the middle of a pattern (``a(?i)b|c``): in Oniguruma they
  apply up to the end of the enclosing group, alternatives included; Python
  only takes them at the very start, so they become a scoped group
  ``a(?i:b|c)``. Ruby's ``m`` option is Python's ``s`` (dot matches newline).
* ``\\z`` (end of text) is Python's ``\\Z``; Oniguruma's ``\\Z`` (end, or before
  a final newline) becomes ``(?=\\n?\\Z)``.
* ``\\x{7F}`` code points.

Named groups ``(?<name>...)`` are handled by the grok expander before this
runs. Everything else is copied unchanged; the result is compiled by the
caller, which reports any remaining syntax error.
"""

from __future__ import annotations

__all__ = ["translate"]

_HEX = "0-9A-Fa-f"

# ASCII meaning, as Oniguruma gives them for ASCII-compatible encodings in Logstash.
_POSIX = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "ascii": "\\x00-\\x7f",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "word": "a-zA-Z0-9_",
    "xdigit": _HEX,
}

_RUBY_TO_PYTHON_FLAGS = {"m": "s", "i": "i", "x": "x"}


def _class_end(src: str, i: int) -> tuple[str, int]:
    """Translate the bracket class opening at ``src[i] == "["``; return it and the index after it."""
    out = ["["]
    i += 1
    if i < len(src) and src[i] == "^":
        out.append("^")
        i += 1
    if i < len(src) and src[i] == "]":  # a leading ']' is literal
        out.append("\\]")
        i += 1
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if nxt == "h":
                out.append(_HEX)
            elif nxt == "x" and (braced := _braced_codepoint(src, i)) is not None:
                out.append(braced[0])
                i = braced[1]
                continue
            else:
                out.append(src[i : i + 2])
            i += 2
            continue
        if c == "[":
            if src.startswith("[:", i):
                end = src.find(":]", i + 2)
                name = src[i + 2 : end] if end > 0 else ""
                if name in _POSIX:
                    out.append(_POSIX[name])
                    i = end + 2
                    continue
                if end > 0 and name.startswith("^"):
                    out.append(src[i : end + 2])  # negated POSIX class: the regex module knows it
                    i = end + 2
                    continue
            if i + 1 < len(src) and src[i + 1] != "^":
                inner, i = _class_end(src, i)  # a nested, non-negated class is a union
                out.append(inner[1:-1])
                continue
            out.append("\\[")
            i += 1
            continue
        if c == "]":
            out.append("]")
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i  # unterminated: let the compiler report it


def _codepoint(hexdigits: str) -> str:
    try:
        cp = int(hexdigits, 16)
    except ValueError:
        return "\\x{" + hexdigits + "}"
    return f"\\x{cp:02x}" if cp <= 0xFF else (f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")


def _braced_codepoint(src: str, i: int) -> tuple[str, int] | None:
    """``\\x{HHHH}`` at ``src[i]``: its Python escape and the index after it; None if it is not one."""
    if not src.startswith("{", i + 2):
        return None
    end = src.find("}", i + 3)
    if end < 0:
        return None
    return _codepoint(src[i + 3 : end]), end + 1


def _inline_flags(src: str, i: int) -> tuple[str, str, int] | None:
    """At ``(?``: return (on-flags, off-flags, index after) for ``(?imx-imx)`` / ``(?imx-imx:``, else None."""
    j = i + 2
    on: list[str] = []
    off: list[str] = []
    target = on
    while j < len(src):
        c = src[j]
        if c in _RUBY_TO_PYTHON_FLAGS:
            target.append(_RUBY_TO_PYTHON_FLAGS[c])
        elif c == "-" and target is on:
            target = off
        elif c in "):":
            if not on and not off:
                return None
            return "".join(on), "".join(off), j
        else:
            return None
        j += 1
    return None


def translate(src: str) -> str:
    """Rewrite Oniguruma-only constructs of ``src`` (see the module docstring)."""
    if not any(t in src for t in ("\\h", "\\H", "[", "(?", "\\z", "\\Z", "\\x{")):
        return src
    out: list[str] = []
    # Per open group: how many scoped-flag groups opened inside it must close with it.
    pending: list[int] = [0]
    i = 0
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n:
            nxt = src[i + 1]
            if nxt == "h":
                out.append(f"[{_HEX}]")
            elif nxt == "H":
                out.append(f"[^{_HEX}]")
            elif nxt == "z":
                out.append("\\Z")
            elif nxt == "Z":
                out.append("(?=\\n?\\Z)")
            elif nxt == "x" and (braced := _braced_codepoint(src, i)) is not None:
                out.append(braced[0])
                i = braced[1]
                continue
            else:
                out.append(src[i : i + 2])
            i += 2
            continue
        if c == "[":
            cls, i = _class_end(src, i)
            out.append(cls)
            continue
        if c == "(":
            if src.startswith("(?", i):
                flags = _inline_flags(src, i)
                if flags is not None:
                    on, off, j = flags
                    spec = on + (f"-{off}" if off else "")
                    if src[j] == ":":  # scoped already: (?m:...)
                        out.append(f"(?{spec}:")
                        pending.append(0)
                    else:  # (?m) up to the end of the enclosing group
                        out.append(f"(?{spec}:")
                        pending[-1] += 1
                    i = j + 1
                    continue
                if src.startswith("(?#", i):  # comment: copy to its close
                    end = src.find(")", i)
                    end = n - 1 if end < 0 else end
                    out.append(src[i : end + 1])
                    i = end + 1
                    continue
            out.append("(")
            pending.append(0)
            i += 1
            continue
        if c == ")":
            if len(pending) > 1:  # an unbalanced ')' is left for the compiler to report
                out.append(")" * pending.pop())
            out.append(")")
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * pending[0])
    return "".join(out)
