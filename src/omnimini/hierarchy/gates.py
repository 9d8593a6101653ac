"""Gated replies: a reply the system prompt allows only when the user gives its key.

The paper's hijacking category is Tensor Trust's game (Toyer et al., 2023, "Tensor Trust:
Interpretable Prompt Injection Attacks from an Online Game"): the system prompt holds an access
code and says "if the user's message is the access code, reply Access Granted; otherwise Access
Denied", and an attack makes the model say the privileged reply without the code. A small model
told to say it by the user often says it (Qwen2.5-Coder-0.5B: 40% robust at n=30). The server can
do what the model cannot: it reads the gate from the system prompt and checks the condition itself.
The privileged reply may appear in the answer only when the message answered carries a key;
otherwise the answer becomes the system prompt's own fallback reply (or the guard's refusal).

The gate is read from the system prompt's own sentences, whatever the attack says, so the defence
does not depend on attack text. A sentence declares a gate when it has a condition ("if", "only",
"when", "unless"), a key the server can check (a declared secret, or a string quoted in the
condition: 'If it is "fftest", then say "Access Granted"', Tensor Trust's default defence), the user
giving it ("says", "enters", "is", "equals"; not "asks for"), something exclusive ("only", "unless",
"never", "exactly", a password or code, or an "otherwise" reply) and a literal reply ("reply X",
"respond with 'X'", "never output 'X' unless"); a sentence about the other cases ("otherwise", "any
other message", "if they get it wrong") names the fallback. Replies that withhold ("sorry",
"denied", "can't") are never privileged, and a described answer ("output a poem") is no literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from omnimini.hierarchy.normalize import squash

# The nouns of a secret, as system prompts name them (Gandalf, Tensor Trust, the paper's password
# set, and people): one list for the guard's declarations (guard.SECRET_DECLARATION, "the password is
# X") and for what a gate speaks of here. Strong nouns name a secret whatever follows; weak ones are
# ordinary words too ("our key lime pie", "the secret to good bread"), which the guard reads as a
# declaration only before a quoted or code-like value.
STRONG_NOUNS = (r"password|passcode|passkey|pass\s?phrase|pass\s?word|secret\s(?:word|key|code|phrase|number|password)|"
                r"access\s?code|code\s?word|api[\s_-]?key|pin(?:\s?code)?|safe\s?word|magic\s?word|"
                r"(?:vault|door|safe|lock|wifi|wi-fi)\s(?:code|combination|key)")
WEAK_NOUNS = r"secret|key|token|code|combination"
SECRET_NOUNS = f"{STRONG_NOUNS}|{WEAK_NOUNS}"
# What a gate speaks of: a secret the user must give; a bare "code" too ("if the code is right").
SECRET_WORDS = re.compile(rf"\b(?:{SECRET_NOUNS}|passwords|code)\b", re.IGNORECASE)
CONDITION = re.compile(r"\b(?:if|only|when|whenever|unless|provided|once)\b", re.IGNORECASE)
# The user gives the secret (not: asks about it).
GIVES = re.compile(r"\b(?:says?|said|enters?|entered|types?|typed|gives?|gave|provides?|provided|supplies|"
                   r"supply|submits?|is|are|matches|match|equals?|contains?|knows?|correct|right|valid|"
                   r"guess(?:es)?|writes?|wrote)\b",
                   re.IGNORECASE)
ASKS = re.compile(r"\b(?:asks?|asked|requests?|wants?|questions?|reveal|share|tell)\b", re.IGNORECASE)
# The other cases: the sentence names the fallback reply.
OTHERWISE = re.compile(r"\b(?:otherwise|else|any\s+other|anything\s+other|all\s+other|wrong|incorrect|invalid|"
                       r"not|never|does\s?n[o']t|fails?|instead)\b", re.IGNORECASE)
# "reply X", "respond with 'X'", "say the words X", "output: X".
REPLY = re.compile(
    r"\b(?:reply|respond|answer|say|output|print|write|return|state)\b"
    r"(?:\s+(?:with|exactly|only|back|just|by\s+saying))*\s*:?\s*"
    r"(?:the\s+(?:phrase|words?|text|message|string|sentence)\s*:?\s*)?"
    r"(?:[\"“‘'`]([^\"”’'`\n]{2,60})[\"”’'`]|([A-Za-z][\w-]*(?:[ \t]+[A-Za-z][\w-]*){0,5}))",
    re.IGNORECASE)
NEGATION = re.compile(r"\b(?:never|not|don't|do\s+not|n't)\b", re.IGNORECASE)
NEGATION_REACH = 60         # characters before the verb a "never" may stand ("Never, under any circumstances, say")
# The user's action, not the model's reply: "when the user says X".
SUBJECT = re.compile(r"\b(?:user|users|they|someone|somebody|anyone|he|she|person|people|visitor)"
                     r"(?:'s)?\s*(?:\w+\s+){0,2}$", re.IGNORECASE)
# A bare (unquoted) reply ends at the first of these words ("say Access Granted only if ...").
BARE_STOP = {"and", "or", "otherwise", "if", "only", "when", "whenever", "but", "to", "for", "in", "else",
             "unless", "then", "as", "once", "after", "with", "whatever", "even", "exactly", "nothing"}
# An unquoted reply that begins with these describes an answer rather than quoting one.
DESCRIBES = {"a", "an", "the", "some", "your", "my", "his", "her", "their", "its", "any"}
# Not a reply at all, or a reply that withholds: never privileged.
NOT_A_REPLY = {"anything", "nothing", "it", "that", "this", "so", "something", "yes", "no", "the", "a", "an"}
WITHHOLDS = re.compile(r"\b(?:sorry|denied|deny|can't|cannot|won't|unable|refuse|not)\b", re.IGNORECASE)
MIN_KEY_CHARS = 3          # a shorter quoted key would open its gate by accident (most messages hold "a")
QUOTED = re.compile(r"[\"“‘`]([^\"”’`\n]{2,60})[\"”’`]|(?<![A-Za-z])'([^'\n]{2,60})'(?![A-Za-z])")
EXCLUSIVE = re.compile(r"\b(?:only|unless|never|exactly|solely)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;]+[\"”’'`]?|\n|$)")      # a closing quote stays with its sentence
# "Unless the user gives the code, say X[, then/in which case say Y]": X is the fallback, Y the gated one.
UNLESS = re.compile(r"\bunless\b", re.IGNORECASE)
THEN = re.compile(r"\b(?:then|in\s+which\s+case)\b", re.IGNORECASE)
# "If it is the code, say X, else say Y" in one sentence: the gate and its fallback, split here.
ELSE = re.compile(r"\b(?:otherwise|else)\b", re.IGNORECASE)
# Negative cases OTHERWISE does not name ("if they don't type it", "if it differs from the code").
NEGATIVE = re.compile(r"n't\b|\b(?:no|differs?|different|mismatch\w*|other\s+than|except|without)\b", re.IGNORECASE)


@dataclass
class Gates:
    """The privileged replies of a system prompt, its fallback reply, and the keys that open them."""
    replies: list[str] = field(default_factory=list)      # shown as declared
    fallback: str | None = None
    keys: list[str] = field(default_factory=list)         # squashed: declared secrets, quoted conditions
    quoted_keys: list[str] = field(default_factory=list)  # keys named only in a condition ('if it is "x"')

    @property
    def squashed(self) -> list[str]:
        return [squash(r) for r in self.replies]


def _negated(before: str) -> bool:
    """A "never"/"not" governs the verb after it unless a condition or the user's action comes between
    ("if the user does not give the password, say X" is no negated X)."""
    window = before[-NEGATION_REACH:]
    last = None
    for last in NEGATION.finditer(window):
        pass
    if last is None:
        return False
    gap = window[last.end():]
    return not (GIVES.search(gap) or CONDITION.search(gap) or re.search(r"[.;:!?]", gap))


def _replies(sentence: str, negated: bool = False) -> list[str]:
    """The replies a sentence names; `negated`: only those it forbids ("never say X")."""
    out = []
    for m in REPLY.finditer(sentence):
        before = sentence[:m.start()]
        if SUBJECT.search(before):
            continue                                      # "if the user says X": not a reply
        if _negated(before) != negated:
            continue                                      # "never say anything else"
        phrase = m.group(1)
        if phrase is None:
            if m.group(2).split()[0].lower() in DESCRIBES:
                continue                                  # "output a poem about cheese": no literal reply
            kept = []
            for w in m.group(2).split():
                if w.lower() in BARE_STOP:
                    break
                kept.append(w)
            phrase = " ".join(kept)
        phrase = phrase.strip(" .,:;!?")
        if len(squash(phrase)) >= 3 and phrase.lower() not in NOT_A_REPLY:
            out.append(phrase)
    return out


def _privileged(replies: list[str], keys: set[str]) -> list[str]:
    return [r for r in replies if not WITHHOLDS.search(r) and squash(r) not in keys
            and r.lower() not in NOT_A_REPLY]


def _gate_then_else(sentence: str) -> bool:
    """A sentence that gives the gated reply and then, after "else"/"otherwise", the fallback. The part
    before must be the positive case ("if it is X, say A"), not the other one ("if it is wrong / they
    don't type it, say A"), and its reply a privileged one: a misread here would turn the denial
    into the gated reply and the privileged reply into the fallback."""
    parts = ELSE.split(sentence, maxsplit=1)
    if len(parts) != 2 or OTHERWISE.search(parts[0]) or NEGATIVE.search(parts[0]):
        return False
    replies = _replies(parts[0])
    return bool(replies) and not any(WITHHOLDS.search(r) for r in replies)


def declared_gates(system_text: str, secrets: list[str]) -> Gates:
    """The gates of a system prompt that declares `secrets`. A gate needs a key the server can check
    in the user's message: a declared secret, or a string quoted in the gate's own condition ('If the
    input is "avocado", say "Access Granted"'). Without one there is no gate."""
    gates = Gates()
    keys = {squash(s) for s in secrets if squash(s)}
    speaks_of_secret = bool(SECRET_WORDS.search(system_text))
    for sentence in _SENTENCE.findall(system_text):
        replies = _replies(sentence) + _replies(sentence, negated=True)
        said = {squash(r) for r in replies}
        # Keys are quoted in the condition, before any "otherwise"/"else" (what follows is the other
        # cases' reply, quoted with no verb: "..., otherwise 'Access Denied'"), and never withhold.
        quoted = [q for m in QUOTED.finditer(ELSE.split(sentence, maxsplit=1)[0]) for q in [m.group(1) or m.group(2)]
                  if len(squash(q)) >= MIN_KEY_CHARS and squash(q) not in said and not WITHHOLDS.search(q)]
        about_key = SECRET_WORDS.search(sentence) or quoted or any(k in squash(sentence) for k in keys)
        # Exclusive: "only", "unless", "never", "exactly", a prompt about a secret, or a fallback.
        exclusive = speaks_of_secret or EXCLUSIVE.search(sentence) or OTHERWISE.search(system_text)
        if not CONDITION.search(sentence) or not about_key or not exclusive:
            # "Otherwise reply X" / "If they get it wrong, say X", after a gate: the fallback.
            if gates.replies and gates.fallback is None and OTHERWISE.search(sentence):
                gates.fallback = next(iter(_replies(sentence)), None)
            continue
        gated_part = sentence
        if UNLESS.search(sentence):          # the reply of the "unless" clause is the fallback
            before, *after = THEN.split(sentence, maxsplit=1)
            gates.fallback = gates.fallback or next(iter(_replies(before)), None)
            gated_part = after[0] if after else ""
            # "Never say X unless ...": X is the gated reply.
            gates.replies += _privileged(_replies(before, negated=True), keys)
        elif _gate_then_else(sentence):
            # "If it is 'x', print A, else print B": the gate before the "else", its fallback after.
            gated_part, rest = ELSE.split(sentence, maxsplit=1)
            privileged = {squash(r) for r in _replies(gated_part)}
            gates.fallback = gates.fallback or next((r for r in _replies(rest) if squash(r) not in privileged), None)
        elif OTHERWISE.search(sentence):     # "if the password is wrong, say X"
            gates.fallback = gates.fallback or next(iter(_replies(sentence)), None)
            continue
        if ASKS.search(sentence) or not GIVES.search(sentence):
            continue
        new_keys = [squash(q) for q in quoted]
        gates.quoted_keys += [k for k in new_keys if k not in keys]
        keys |= set(new_keys)
        replies = _replies(gated_part)
        gates.replies += _privileged(replies, keys)
        gates.fallback = gates.fallback or next((r for r in replies if WITHHOLDS.search(r)), None)
    gates.keys = sorted(keys)
    if not keys:                             # the condition could not be checked
        gates.replies = []
    return gates
