"""Text released while streaming: whole characters only, never part of a stop sequence."""

from __future__ import annotations

from omnimini.engine.base import TokenInfo
from omnimini.engine.textstream import TextStream


def _run(pieces: list[bytes], stops=()) -> tuple[list[str], str, bool, list[str]]:
    s = TextStream(tuple(stops))
    out, tokens = [], []
    for i, p in enumerate(pieces):
        text, infos = s.push(p, TokenInfo(token=str(i), bytes=tuple(p), logprob=-1.0))
        out.append(text)
        tokens += [t.token for t in infos]
        if s.stopped:
            break
    tail, infos = s.finish()
    tokens += [t.token for t in infos]
    return out, "".join(out) + tail, s.stopped, tokens


def test_multibyte_characters_are_never_split():
    snow = "☃".encode()                       # 3 bytes across 3 tokens
    out, full, _, tokens = _run([b"a", snow[:1], snow[1:2], snow[2:], b"b"])
    assert out == ["a", "", "", "☃", "b"] and full == "a☃b"
    assert tokens == ["0", "1", "2", "3", "4"]   # logprob entries come out with their character


def test_stop_sequence_is_held_back_then_cut():
    out, full, stopped, tokens = _run([b"Hello", b" wor", b"ld", b"END", b"more"], stops=["world"])
    assert full == "Hello " and stopped
    assert out[1] == " " and out[2] == ""    # " wor" might start "world": held back
    assert tokens == ["0", "1"]             # the token that straddles the stop keeps its entry


def test_held_back_text_is_released_when_the_stop_fails_to_complete():
    out, full, stopped, _ = _run([b"ab", b"c", b"x"], stops=["cd"])
    assert out == ["ab", "", "cx"] and full == "abcx" and not stopped


def test_stop_inside_one_token_and_across_many():
    assert _run([b"foo.bar"], stops=["."])[1] == "foo"
    assert _run([b"a", b"<", b"/", b"s", b">", b"b"], stops=["</s>"])[1] == "a"


def test_pending_text_flushes_at_the_end():
    _, full, stopped, _ = _run([b"abc", b"<"], stops=["<stop>"])
    assert full == "abc<" and not stopped
