"""The prose lint: build-process language that a chapter's markdown may not contain.

A chapter is a lesson for a student; how the book was built (machines, run times, pilots,
targets, re-runs, data copies, tooling) belongs on the appendix page "How this book was made"
(book/making-of.md) or in the run report, never in the chapter's prose. Each pattern names
what it catches; `build_talk(text)` returns the offending phrases. Words with a legitimate
meaning in a CNN book ("target mask", "target task", "the goal of training") are matched only
in their build-process sense.
"""

from __future__ import annotations

import re

_NUM = r"(?:\d+|one|two|three|four|eight|sixteen)"

PATTERNS: dict[str, str] = {
    "build machine or host": r"\b(?:build (?:machines?|hosts?)|(?:this|our|the|a|an|that) hosts?|hosts?'s?"
                             r"|this machine(?:'s)?|these machines|project's machines)\b",
    "CPU model": r"\b(?:intel|xeon|amd|epyc|zen ?\d|avx[\w-]*|amx[\w-]*)\b",
    "thread count": rf"\b{_NUM}[ -]threads?\b|\bthread count",
    "wall time": r"\bwall[- ]?(?:clock|time)s?\b|\bminutes? budget|\bbudget of [\d.]+ ?min",
    "pilot": r"\bpilots?\b",
    "target or goal (build sense)": r"\b(?:short of|reach(?:es|ed)?|miss(?:es|ed)?|beat(?:s)?|meet(?:s)?|met)"
                                    r" (?:the|its|our|this) (?:target|goal)\b"
                                    r"|\b(?:target|goal) (?:set|was set|of [\d.]+ ?%)"
                                    r"|\bset (?:itself )?(?:a|the) (?:target|goal)\b",
    "committed outputs": r"\bcommit(?:ted|s)?\b",
    "runs of the book": r"\b(?:previous|earlier|latest|last|this|committed|first full|full-mode) runs?\b"
                        r"|\bre-?run (?:of the chapter|of this chapter)|\bre-?executed\b",
    "session": r"\bsessions?\b",
    "offline copy": r"\boffline (?:copy|copies|data|machines?)\b|\bcopy of (?:the )?data\b",
    "set-up scripts": r"\bscripts/[\w.]+|\b(?:set_repo_url|execute|test|setup)\.(?:py|sh)\b",
    "test markers and CI": r"\bnbval\b|\bNBVAL_\w+|\bpytest\b|\bCI\b|\bcontinuous integration\b",
    "decided after results": r"\bafter (?:seeing|the first) (?:the )?(?:results|scores)\b"
                             r"|\bpost[- ]hoc\b",
}

_COMPILED = [(name, re.compile(p, re.IGNORECASE if name != "test markers and CI" else 0))
             for name, p in PATTERNS.items()]


def _strip_code_and_links(markdown: str) -> str:
    """Prose only: drop fenced code, inline code, URLs of links and MyST roles' targets."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return text


def build_talk(markdown: str) -> list[tuple[str, str]]:
    """(pattern name, matched phrase) for every build-process phrase in ``markdown``'s prose."""
    prose = _strip_code_and_links(markdown)
    return [(name, m.group(0)) for name, rx in _COMPILED for m in rx.finditer(prose)]
