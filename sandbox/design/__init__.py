"""Dashboard and alert-rule design practice: grade a learner's Grafana dashboard (JSON or a
grafana-foundation-sdk module) or Prometheus alert rules against each incident's recording.

- ``window``: the boundary with recordings (``Window``: one incident's data served by a
  Prometheus, its baseline and its injection time) and the adapter from recording files;
- ``load``: dashboard files to panels and queries, with every problem of the input as a message;
- ``promql``: the few facts about a query the grader needs (metric names, quantiles);
- ``areas``: which phase (docs/phases.md) or rollout a query or series points at;
- ``evaluate``: panel queries over a window; anomalies against the window's own baseline;
- ``lint``: the design pitfalls;
- ``score``: criteria, points and evidence; ``report``: text, JSON and pictures;
- ``rules``: the same harness for alerting rules.
"""

from sandbox.design.load import GradeInputError, LoadedDashboard, load_dashboards
from sandbox.design.score import Grade, grade_dashboards
from sandbox.design.window import Window

__all__ = [
    "Grade",
    "GradeInputError",
    "LoadedDashboard",
    "Window",
    "grade_dashboards",
    "load_dashboards",
]
