"""The `omnimini` command: help that documents every option, settings from flags and environment,
and the terminal chat, in-process and against a live server."""

from __future__ import annotations

import os
import subprocess
import sys

from omnimini.settings import Settings

CLI = [sys.executable, "-m", "omnimini"]


def _run(args, input_text=None, env=None, timeout=180):
    return subprocess.run(CLI + args, input=input_text, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_serve_help_describes_every_setting():
    out = _run(["serve", "--help"]).stdout
    for flag in ("--host", "--port", "--data-dir", "--models-file", "--model", "--threads",
                 "--context-size", "--preload", "--log-level", "--max-request-bytes", "--parallel"):
        assert flag in out
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
    assert "Address to listen on" in out and "OMNIMINI_PORT" in out


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("OMNIMINI_PORT", "9123")
    monkeypatch.setenv("OMNIMINI_CONTEXT_SIZE", "2048")
    s = Settings()
    assert s.port == 9123 and s.context_size == 2048
    assert Settings(port=9000).port == 9000                  # explicit values (flags) win


def test_models_command_lists_the_catalog():
    out = _run(["models"]).stdout
    assert "omnimini-mini-2026-11-21" in out and "omnimini-embed" in out


def test_chat_in_process_streams_keeps_history_and_takes_system():
    script = "/system You are a pirate.\nHello, who are you?\nAnd what did I just ask?\n/reset\n/exit\n"
    r = _run(["chat", "--max-tokens", "12", "--temperature", "0", "--threads", "2"], input_text=script)
    assert r.returncode == 0, r.stderr
    assert "system prompt set" in r.stdout and "history cleared" in r.stdout
    assert r.stdout.count("assistant>") == 2


def test_chat_against_a_live_server(server):
    r = _run(["chat", "--base-url", server.base_url, "--max-tokens", "8"], input_text="Hi there\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("assistant>") == 1 and "error" not in r.stdout.lower()
    r = _run(["chat", "--base-url", server.base_url, "--model", "nope"], input_text="Hi\n")
    assert "does not exist" in r.stdout
