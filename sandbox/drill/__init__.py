"""The training loop: incidents as data (``manifest``), the drill that runs them (``runner``,
with its steps in ``steady``, ``page``, ``respond`` and ``recovery`` sharing a ``context``),
the page receiver (``webhook``), grading, prompts and the report. The drill is the top layer:
it uses the changes (``faults``), which use the services and the core (``sandbox.timeline``),
never the other way round."""

__all__: list[str] = []
