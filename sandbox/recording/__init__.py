"""Recordings: an incident frozen (samples, spans, timeline, pages, report) and its replays.

- ``format``: the versioned file format (``FORMAT_VERSION``), its data classes and its errors;
- ``archive``: writes and reads a recording file (``write_recording``, ``read_recording``);
- ``capture``: reads a window of raw samples from any Prometheus;
- ``serve``: offline replay, the whole window in a real Prometheus (``serve_recording``);
- ``remote_write``: Prometheus' remote-write protocol, how replays load samples;
- ``feeder``: samples (with staleness markers) and spans fed to a replay, shifted or not;
- ``live``, ``replay_drill``: the live replay and the drill on it;
- ``record``: ``sandbox record``;
- ``drill_hook``: the recording every drill writes at its end.

The format is described for people in ``docs/recordings.md``.
"""

from __future__ import annotations

# The whole interface of ``format`` is the package's too (as asyncio re-exports its
# submodules'), so the names are listed once, where they are defined.
from sandbox.recording import format
from sandbox.recording.archive import read_recording, write_recording
from sandbox.recording.format import *  # noqa: F403
from sandbox.recording.serve import ServedRecording, serve_recording

__all__ = [
    *format.__all__,
    "ServedRecording",
    "read_recording",
    "serve_recording",
    "write_recording",
]
