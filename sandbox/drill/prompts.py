"""Interactive prompts for the drill, in a plain terminal (no curses, no colours required).

``Prompter`` reads lines from ``stdin`` and writes to ``stdout`` (both injectable). Without a
terminal it refuses at once (``NoTerminal``) instead of hanging on a read that never comes; end
of input is an error too. The learner types a letter for a choice, ``h`` for a hint, ``s`` for
the current signal values, ``q`` to give up.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from sandbox.exceptions import SandboxError

__all__ = ["GiveUp", "NoTerminal", "Prompter"]


class NoTerminal(SandboxError):
    """Interactive mode was asked for without a terminal."""


class GiveUp(SandboxError):
    """The learner typed q."""


class Prompter:
    def __init__(
        self,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        on_hint: Callable[[], str | None] | None = None,
        on_status: Callable[[], str] | None = None,
        require_tty: bool = True,
    ) -> None:
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.on_hint = on_hint or (lambda: None)
        self.on_status = on_status or (lambda: "")
        if require_tty and not (self.stdin.isatty() and self.stdout.isatty()):
            raise NoTerminal(
                "interactive mode needs a terminal (stdin and stdout are not one); "
                "run it in a terminal, or use --mode auto (MODE=auto) to apply the reference mitigation"
            )

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def _line(self, prompt: str) -> str:
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise NoTerminal("input ended (end of file) while waiting for an answer")
        return line.strip()

    def _extras(self, key: str) -> bool:
        """Handle h/s/q; return True when the key was one of them."""
        if key == "h":
            hint = self.on_hint()
            self.say(f"  hint: {hint}" if hint else "  no more hints")
            return True
        if key == "s":
            self.say(self.on_status() or "  (no status)")
            return True
        if key == "q":
            raise GiveUp()
        return False

    def wait_ready(self, prompt: str) -> None:
        """Let the learner investigate; Enter continues, h/s work meanwhile."""
        while True:
            key = self._line(prompt).lower()
            if not self._extras(key):
                return

    def ask_key(self, prompt: str, keys: Sequence[str], max_tries: int = 200) -> str:
        """Read until one of ``keys`` is typed (h/s/q work meanwhile); returns it."""
        for _ in range(max_tries):
            key = self._line(prompt).lower()
            if key in keys:
                return key
            if not self._extras(key):
                self.say(f"  please type one of {', '.join(keys)}")
        raise NoTerminal(f"no valid key after {max_tries} tries")

    def choose(self, question: str, options: Sequence[tuple[str, str]], max_tries: int = 20) -> str:
        """Ask until a listed option id is typed (bounded); returns the id."""
        ids = [option_id for option_id, _ in options]
        self.say()
        self.say(question)
        for option_id, text in options:
            self.say(f"  {option_id}) {text}")
        for _ in range(max_tries):
            key = self._line(f"answer [{'/'.join(ids)}, h=hint, s=signals, q=quit]: ").lower()
            if self._extras(key):
                continue
            if key in ids:
                return key
            self.say(f"  please type one of {', '.join(ids)}")
        raise NoTerminal(f"no valid answer after {max_tries} tries")
