"""Capacity and autoscaling: replicas, the scaling signal, start-up time and queues."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.panels import (
    ENGINE,
    PERCENTILES,
    PanelBuilder,
    Query,
    Unit,
    dashboard,
    rate_by,
    timeseries_panel,
)

__all__ = ["UID", "capacity_dashboard"]

UID = "sandbox-capacity"


def replicas_timeseries() -> PanelBuilder:
    return timeseries_panel(
        1,
        "Replicas: desired, starting, ready",
        "The autoscaler's desired, starting and ready replicas within its bounds, and the engine targets that answer Prometheus.",
        Unit.COUNT,
        [
            Query("sandbox_autoscaler_desired_replicas", "desired"),
            Query("sandbox_autoscaler_starting_replicas", "starting"),
            Query("sandbox_autoscaler_ready_replicas", "ready"),
            Query("sandbox_autoscaler_max_replicas", "max"),
            Query('count(up{job="engine"} == 1)', "engine targets up"),
        ],
    )


def signal_timeseries() -> PanelBuilder:
    return timeseries_panel(
        2,
        "Scaling signal per replica vs its target",
        "The value the autoscaler scales on (QPS, queue depth or KV usage per ready replica) next to its target.",
        Unit.COUNT,
        [
            Query("sandbox_autoscaler_signal_value", "signal"),
            Query("sandbox_autoscaler_signal_target", "target"),
        ],
    )


def scale_up_time_timeseries() -> PanelBuilder:
    return timeseries_panel(
        3,
        "Scale-up decision to ready p50/p95/p99 (last 30 min)",
        "Time from a scale-up decision to the new engine being ready: what the autoscaler must anticipate.",
        Unit.SECONDS,
        [
            Query(
                f"histogram_quantile({q}, sum by (le) (increase(sandbox_autoscaler_scale_up_to_ready_seconds_bucket[30m])))",
                label,
            )
            for q, label in PERCENTILES
        ],
    )


def gateway_and_engine_timeseries(
    panel_id: int,
    title: str,
    description: str,
    *,
    gateway: tuple[str, str],
    engine: tuple[str, str],
) -> PanelBuilder:
    """A count the gateway keeps next to the engines' own (filtered by replica), each side a
    (gauge, legend): where the two part ways, requests are held before the engine or inside it."""
    return timeseries_panel(
        panel_id,
        title,
        description,
        Unit.COUNT,
        [
            Query(f"sum({gateway[0]})", f"gateway {gateway[1]}"),
            Query(f"sum({engine[0]}{{{ENGINE}}})", f"engine {engine[1]}"),
        ],
    )


def queue_depth_timeseries() -> PanelBuilder:
    return gateway_and_engine_timeseries(
        4,
        "Queue depth: gateway admission and engine",
        "Requests waiting for admission at the gateway, and requests waiting inside the engines.",
        gateway=("sandbox_gateway_queue_depth", "admission queue"),
        engine=("vllm:num_requests_waiting", "waiting"),
    )


def in_flight_timeseries() -> PanelBuilder:
    return gateway_and_engine_timeseries(
        5,
        "In flight: gateway requests and engine batch",
        "Requests being served by the gateway, and sequences running in the engines.",
        gateway=("sandbox_gateway_in_flight_requests", "in flight"),
        engine=("vllm:num_requests_running", "running"),
    )


def decisions_timeseries() -> PanelBuilder:
    return timeseries_panel(
        6,
        "Scaling decisions per second by direction",
        "Scale-up and scale-down decisions of the autoscaler.",
        Unit.EVENTS_PER_S,
        [rate_by("sandbox_autoscaler_decisions_total", ("direction",), 'direction!="none"')],
    )


def rejections_timeseries() -> PanelBuilder:
    return timeseries_panel(
        7,
        "Admission rejections per second by reason",
        "Requests refused at the gateway: budget, queue full or timed out, too long.",
        Unit.REQUESTS_PER_S,
        [Query("reason:sandbox_gateway_rejections:rate1m", "{{reason}}")],
    )


def targets_timeseries() -> PanelBuilder:
    return timeseries_panel(
        8,
        "Scrape targets up by job",
        "Targets of each job that answer Prometheus' scrape, and how many there are.",
        Unit.COUNT,
        [Query("sum by (job) (up)", "{{job}} up"), Query("count by (job) (up)", "{{job}} targets")],
    )


def capacity_dashboard() -> Dashboard:
    return dashboard(
        UID,
        "Capacity and autoscaling",
        "Replicas wanted, starting and ready; the scaling signal and its target; start-up time; queues and rejections.",
        [
            replicas_timeseries(),
            signal_timeseries(),
            scale_up_time_timeseries(),
            queue_depth_timeseries(),
            in_flight_timeseries(),
            decisions_timeseries(),
            rejections_timeseries(),
            targets_timeseries(),
        ],
    )
