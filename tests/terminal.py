"""A scripted learner at a real pseudo-terminal: start a command on a pty, wait for text, type."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Terminal"]


class Terminal:
    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        self._main, child = pty.openpty()
        self.process = subprocess.Popen(
            list(argv), stdin=child, stdout=child, stderr=child, cwd=cwd, env=env, close_fds=True
        )
        os.close(child)
        self.output = ""  # everything so far
        self._seen = 0  # where the next expect starts looking

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self._main], [], [], timeout_s)
        if not ready:
            return True
        try:
            chunk = os.read(self._main, 4096)
        except OSError:  # the child closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        return True

    def expect(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) after the last match; fail with the tail of the output."""
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                self._seen = match.end()
                return match
            if time.monotonic() > deadline or not self._read(0.2):
                match = regex.search(self.output, self._seen)
                if match:
                    self._seen = match.end()
                    return match
                raise AssertionError(
                    f"no {pattern!r} within {timeout_s:.0f} s; output ends with:\n"
                    + self.output[-3000:]
                )

    def since(self, start: int) -> str:
        return self.output[start:]

    def send(self, line: str) -> None:
        os.write(self._main, line.encode() + b"\n")

    def option(self, text: str) -> str:
        """The key of the listed option whose text contains ``text``, in the last listing."""
        keys = re.findall(rf"^\s+(\w)\) [^\n]*{re.escape(text)}", self.output, re.MULTILINE)
        if not keys:
            raise AssertionError(
                f"no option with {text!r}; output ends with:\n{self.output[-2000:]}"
            )
        return str(keys[-1])

    def wait(self, timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.05) and self.process.poll() is not None:
            if not select.select([self._main], [], [], 0)[0]:
                break
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self._main)
