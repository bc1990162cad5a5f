"""The training loop: incidents as data (``manifest``), the drill that runs them (``runner``),
the page receiver (``webhook``), grading, prompts and the report. Import the modules you need;
this package imports nothing at start-up so that ``faults`` can use ``sandbox.drill.timeline``."""

__all__: list[str] = []
