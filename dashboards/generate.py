#!/usr/bin/env python3
"""Writes dashboards/*.json (Grafana dashboards of genesys-cloud-exporter). Edit this file, then run
`python3 dashboards/generate.py`; tests/dashboards_static.rs checks the result.

Conventions: datasource only via the `datasource` variable; variables division, queue, media_type (multi, "All" =
`.*`); queue series filtered with queue=~"$queue" and joined to genesys_queue_info for the division; every query
returns data on a healthy exporter (fallbacks where a series is legitimately absent), because the end-to-end test
runs every target against a real Prometheus."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
GREY = "#8e8e8e"
RI = "$__rate_interval"


def sel(metric, extra="", media=False):
    """A queue metric filtered by the queue and media type variables and joined to the division variable."""
    m = ',media_type=~"$media_type"' if media else ""
    return f'({metric}{{queue=~"$queue"{m}{extra}}} and on (queue_id) genesys_queue_info{{division=~"$division"}})'


# Zero for every queue whose data is fresh, nothing for a stale one: a fallback that shows 0 rather than
# "No data" when a series is absent because its count is zero, without painting a stale queue as zero.
FRESH_ZERO = 'sum by (queue) (' + sel("genesys_queue_stale") + ' == 0)'


def none_label(label):
    """A single 0 labelled label="none"; use after `or on ()` so it appears only when the left side is empty."""
    return f'label_replace(vector(0), "{label}", "none", "", "")'


class Panels:
    def __init__(self):
        self.items = []
        self.next_id = 1
        self.y = 0

    def add(self, p, w, h, x):
        p["id"] = self.next_id
        self.next_id += 1
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": self.y}
        self.items.append(p)
        return p

    def row(self, title, repeat=None):
        p = {"type": "row", "title": title, "collapsed": False, "panels": [], "datasource": DS}
        if repeat:
            p["repeat"] = repeat
        self.add(p, 24, 1, 0)
        self.y += 1

    def line(self, panels, h):
        """Lay out a list of (panel, width) left to right on a new line."""
        x = 0
        for p, w in panels:
            self.add(p, w, h, x)
            x += w
        self.y += h


def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref, "range": not instant,
         "instant": instant}
    if fmt:
        t["format"] = fmt
    return t


def thresholds(*steps):
    """steps: (color, value) with the first value None (the base)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def stat(title, targets, unit="short", th=None, description="", mappings=None, decimals=None, color_mode="background",
         text_size=None, no_value="–"):
    defaults = {"unit": unit, "color": {"mode": "thresholds"},
                "thresholds": th or thresholds(("green", None)), "mappings": mappings or [], "noValue": no_value}
    if decimals is not None:
        defaults["decimals"] = decimals
    p = {"type": "stat", "title": title, "description": description, "datasource": DS, "targets": targets,
         "fieldConfig": {"defaults": defaults, "overrides": []},
         "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "colorMode": color_mode, "graphMode": "none", "justifyMode": "center",
                     "textMode": "value_and_name" if len(targets) > 1 else "value", "orientation": "auto",
                     "wideLayout": True, "showPercentChange": False}}
    if text_size:
        p["options"]["text"] = {"valueSize": text_size}
    return p


def timeseries(title, targets, unit="short", description="", stack=False, min0=True, th=None):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 20 if stack else 0, "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    defaults = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if min0:
        defaults["min"] = 0
    if th:
        defaults["thresholds"] = th
        custom["thresholdsStyle"] = {"mode": "line"}
    return {"type": "timeseries", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"],
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def table(title, targets, description=""):
    return {"type": "table", "title": title, "description": description, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
            "options": {"showHeader": True, "cellHeight": "sm"},
            "transformations": [{"id": "merge", "options": {}}]}


def variables(with_media=True):
    def query_var(name, label, query, regex=""):
        return {"type": "query", "name": name, "label": label, "datasource": DS,
                "definition": query, "query": query,
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".*", "sort": 1, "regex": regex,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}
    v = [{"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
          "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
         query_var("division", "Division", "label_values(genesys_queue_info, division)"),
         query_var("queue", "Queue", 'label_values(genesys_queue_info{division=~"$division"}, queue)')]
    if with_media:
        v.append(query_var("media_type", "Media type", "label_values(genesys_queue_waiting, media_type)"))
    return {"list": v}


def dashboard(title, slug, panels, refresh, description, tags, time_from="now-3h"):
    return {
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.4.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "uid": None, "id": None, "title": title, "description": description, "tags": ["genesys"] + tags,
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1, "style": "dark",
        "refresh": refresh, "time": {"from": time_from, "to": "now"}, "timezone": "browser",
        "timepicker": {"refresh_intervals": ["5s", "10s", "30s", "1m", "5m"]}, "liveNow": False,
        "fiscalYearStartMonth": 0, "weekStart": "",
        "templating": variables(), "annotations": {"list": []},
        "links": [{"title": "Genesys dashboards", "type": "dashboards", "tags": ["genesys"], "asDropdown": True,
                   "includeVars": True, "keepTime": True}],
        "panels": panels.items,
    }, slug


# --- Queue wallboard ---------------------------------------------------------------------------------------------
def wallboard():
    p = Panels()
    p.row("All selected queues")
    p.line([
        (stat("Waiting", [target(f'sum({sel("genesys_queue_waiting", media=True)})', "Waiting", instant=True)],
              th=thresholds(("green", None), ("orange", 5), ("red", 10)), text_size=80,
              description="Conversations waiting in the selected queues and media types (oWaiting)."), 5),
        (stat("Longest wait", [target(
            f'max({sel("genesys_queue_longest_waiting_seconds", media=True)}) or max({FRESH_ZERO})',
            "Longest wait", instant=True)], unit="s",
            th=thresholds(("green", None), ("orange", 60), ("red", 120)), text_size=80,
            description="Longest waiting conversation of the selected queues. Green < 60 s, amber < 120 s "
                        "(the GenesysQueueLongestWaitHigh default), red above."), 5),
        (stat("Agents available / on queue", [
            target(f'sum({sel("genesys_queue_on_queue_agents", extra=",routing_status=" + chr(34) + "idle" + chr(34))})'
                   f' or sum({FRESH_ZERO})', "Available", instant=True),
            target(f'sum({sel("genesys_queue_on_queue_agents")}) or sum({FRESH_ZERO})', "On queue", "B",
                   instant=True)],
            th=thresholds(("red", None), ("green", 1)), text_size=60, color_mode="value",
            description="Available = on-queue agents with routing status idle; on queue = all on-queue agents."), 6),
        (stat("Stale queues", [target(f'count({sel("genesys_queue_stale")} == 1) or vector(0)', "Stale",
                                      instant=True)],
              th=thresholds(("green", None), (GREY, 1)), text_size=80,
              description="Queues whose data no healthy source confirms: their tiles below are grey/empty."), 4),
        (stat("Exporter", [target("min(genesys_up) or vector(0)", "genesys_up", instant=True)],
              mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                                      "1": {"text": "UP", "color": "green", "index": 1}}}],
              th=thresholds(("red", None), ("green", 1)), text_size=60,
              description="genesys_up of the exporter: authenticated and serving fresh data."), 4),
    ], 5)

    p.row("$queue", repeat="queue")
    q = "queue"
    sl_num = (f'sum by (queue) ({sel("genesys_queue_service_level_ratio", media=True)} * on (queue_id, media_type) '
              f'group_left () max by (queue_id, queue, media_type) (genesys_queue_interval_offered))')
    sl_den = (f'sum by (queue) (max by (queue_id, queue, media_type) (genesys_queue_interval_offered) and on (queue_id, '
              f'media_type) {sel("genesys_queue_service_level_ratio", media=True)})')
    abandoned = f'(sum by (queue) ({sel("genesys_queue_interval_abandoned", media=True)}) or {FRESH_ZERO})'
    offered = f'sum by (queue) ({sel("genesys_queue_interval_offered", media=True)})'
    stale_map = [{"type": "value", "options": {"0": {"text": "FRESH", "color": "green", "index": 0},
                                               "1": {"text": "STALE", "color": GREY, "index": 1}}}]
    p.line([
        (stat("Waiting", [target(f'sum by (queue) ({sel("genesys_queue_waiting", media=True)})', "{{queue}}",
                                 instant=True)],
              th=thresholds(("green", None), ("orange", 5), ("red", 10)), text_size=70,
              description="Conversations waiting (oWaiting), selected media types."), 3),
        (stat("Longest wait", [target(
            f'max by (queue) ({sel("genesys_queue_longest_waiting_seconds", media=True)}) or {FRESH_ZERO}',
            "{{queue}}", instant=True)], unit="s",
            th=thresholds(("green", None), ("orange", 60), ("red", 120)), text_size=70,
            description="Longest waiting conversation. Green < 60 s, amber < 120 s, red above (the alert's "
                        "default threshold)."), 3),
        (stat("Available / on queue", [
            target(f'sum by (queue) ({sel("genesys_queue_on_queue_agents", extra=",routing_status=" + chr(34) + "idle" + chr(34))})'
                   f' or {FRESH_ZERO}', "Available", instant=True),
            target(f'sum by (queue) ({sel("genesys_queue_on_queue_agents")}) or {FRESH_ZERO}', "On queue", "B",
                   instant=True)],
            th=thresholds(("red", None), ("green", 1)), text_size=50, color_mode="value",
            description="Available = on-queue agents in routing status idle; on queue = every on-queue agent."), 4),
        (stat("Service level", [target(f'{sl_num} / {sl_den}', "{{queue}}", instant=True)], unit="percentunit",
              th=thresholds(("red", None), ("orange", 0.7), ("green", 0.8)), text_size=60, decimals=0,
              description="Service level of the current 30-minute interval, media types weighted by offered. "
                          "This panel may be empty at the very start of an interval, before anything was answered."), 3),
        (stat("Abandoned", [target(f'{abandoned} / {offered} or {FRESH_ZERO}', "{{queue}}", instant=True)], unit="percentunit",
              th=thresholds(("green", None), ("orange", 0.05), ("red", 0.1)), text_size=60, decimals=0,
              description="Abandoned ÷ offered in the current 30-minute interval; 0 % before anything was "
                          "offered."), 3),
        (stat("Offered this interval", [target(f'{offered} or {FRESH_ZERO}', "{{queue}}", instant=True)],
              th=thresholds(("blue", None)), text_size=60,
              description="Conversations offered in the current 30-minute interval."), 3),
        (stat("Data", [
            target(f'max by (queue) ({sel("genesys_queue_stale")})', "Freshness", instant=True),
            target(f'max by (queue) ({sel("genesys_queue_data_age_seconds")})', "Age", "B", instant=True),
            target(f'sum by (queue) ({sel("genesys_queue_source", extra=",source=" + chr(34) + "poll" + chr(34))})'
                   f' + 2 * sum by (queue) ({sel("genesys_queue_source", extra=",source=" + chr(34) + "none" + chr(34))})',
                   "Source", "C", instant=True)],
            mappings=stale_map, th=thresholds(("green", None), (GREY, 1)), text_size=36,
            description="FRESH, or STALE (grey) when no healthy stream confirms the queue's data; Age = seconds "
                        "since any source last confirmed it; Source = stream, poll (the REST fallback) or none. "
                        "Values older than the exporter's max age are withdrawn."), 5),
    ], 5)
    # The Age field: seconds, no STALE mapping, grey once older than the alert's 180 s.
    source_map = [{"type": "value", "options": {"0": {"text": "stream", "color": "green", "index": 0},
                                                "1": {"text": "poll", "color": "orange", "index": 1},
                                                "2": {"text": "none", "color": GREY, "index": 2}}}]
    p.items[-1]["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byFrameRefID", "options": "B"},
         "properties": [{"id": "unit", "value": "s"}, {"id": "mappings", "value": []},
                        {"id": "thresholds", "value": thresholds(("green", None), ("orange", 60), (GREY, 180))}]},
        {"matcher": {"id": "byFrameRefID", "options": "C"},
         "properties": [{"id": "mappings", "value": source_map},
                        {"id": "thresholds", "value": thresholds(("green", None), ("orange", 1), (GREY, 2))}]}]
    return dashboard("Genesys Cloud / Queue wallboard", "queue-wallboard", p, "5s",
                     "Live queue state for a TV: one row per queue. Grey = stale data.", ["wallboard"],
                     time_from="now-30m")


# --- Agents & capacity -------------------------------------------------------------------------------------------
def agents():
    p = Panels()
    p.row("Agents")
    p.line([
        (timeseries("Members by routing status", [target(
            f'sum by (routing_status) ({sel("genesys_queue_agents")})', "{{routing_status}}")], stack=True,
            description="Queue members by routing status (oUserRoutingStatuses), summed over the selected queues: "
                        "an agent in several queues counts once per queue."), 12),
        (timeseries("On-queue agents by routing status", [target(
            f'sum by (routing_status) ({sel("genesys_queue_on_queue_agents")}) or on () {none_label("routing_status")}',
            "{{routing_status}}")], stack=True,
            description="Agents on queue, by routing status (oOnQueueUsers)."), 12),
    ], 9)
    p.line([
        (timeseries("Members by presence", [target(
            f'sum by (presence) ({sel("genesys_queue_presence_agents")})', "{{presence}}")], stack=True,
            description="Queue members by presence (oUserPresences), presence names resolved."), 12),
        (timeseries("Off-queue agents by presence", [target(
            f'sum by (presence) ({sel("genesys_queue_off_queue_agents")}) or on () {none_label("presence")}',
            "{{presence}}")], stack=True,
            description="Members not on queue, by presence (oOffQueueUsers); 'none' when everyone is on queue."),
         12),
    ], 9)
    p.row("Capacity")
    oq = f'sum by (queue) ({sel("genesys_queue_on_queue_agents")})'
    inter = (f'(sum by (queue) ({sel("genesys_queue_on_queue_agents", extra=",routing_status=" + chr(34) + "interacting" + chr(34))})'
             f' or {FRESH_ZERO})')
    idle = (f'(sum by (queue) ({sel("genesys_queue_on_queue_agents", extra=",routing_status=" + chr(34) + "idle" + chr(34))})'
            f' or {FRESH_ZERO})')
    active = f'sum by (queue) ({sel("genesys_queue_active_agents")})'
    p.line([
        (timeseries("Utilisation (on queue ÷ active)", [target(f'{oq} / {active}', "{{queue}}")],
                    unit="percentunit",
                    description="Share of the queue's active members who are on queue."), 8),
        (timeseries("Occupancy (interacting ÷ on queue)", [target(f'{inter} / {oq}', "{{queue}}")],
                    unit="percentunit",
                    description="On-queue agents handling an ACD conversation (routing status interacting), as in "
                                "genesys:queue_occupancy:ratio (docs/kpis.md)."), 8),
        (timeseries("Available ratio (idle ÷ on queue)", [target(f'{idle} / {oq}', "{{queue}}")],
                    unit="percentunit",
                    description="On-queue agents free to take a conversation, as in "
                                "genesys:queue_available_agents:ratio."), 8),
    ], 8)
    p.line([
        (timeseries("Members, active and on queue", [
            target(f'sum({sel("genesys_queue_member_agents")})', "Members"),
            target(f'sum({sel("genesys_queue_active_agents")})', "Active", "B"),
            target(f'sum({sel("genesys_queue_on_queue_agents")}) or vector(0)', "On queue", "C")],
            description="oMemberUsers, oActiveUsers, oOnQueueUsers summed over the selected queues."), 12),
        (timeseries("Conversations: waiting, alerting, interacting", [
            target(f'sum by (media_type) ({sel("genesys_queue_waiting", media=True)})', "waiting {{media_type}}"),
            target(f'sum by (media_type) ({sel("genesys_queue_alerting", media=True)}) or on () {none_label("media_type")}',
                   "alerting {{media_type}}", "B"),
            target(f'sum by (media_type) ({sel("genesys_queue_interacting", media=True)}) or on () {none_label("media_type")}',
                   "interacting {{media_type}}", "C")],
            description="Demand next to capacity, by media type."), 12),
    ], 8)
    return dashboard("Genesys Cloud / Agents & capacity", "agents-capacity", p, "30s",
                     "Routing statuses, presences, utilisation, occupancy and available ratio per queue.", ["agents"])


# --- Exporter health ---------------------------------------------------------------------------------------------
def health():
    p = Panels()
    p.row("Status")
    p.line([
        (stat("genesys_up", [target("min(genesys_up) or vector(0)", "up", instant=True)],
              mappings=[{"type": "value", "options": {"0": {"text": "DOWN", "color": "red", "index": 0},
                                                      "1": {"text": "UP", "color": "green", "index": 1}}}],
              th=thresholds(("red", None), ("green", 1)),
              description="Authenticated and serving fresh data."), 4),
        (stat("Queues by source", [
            target(f'count({sel("genesys_queue_source", extra=",source=" + chr(34) + "stream" + chr(34))} == 1) or vector(0)', "stream", instant=True),
            target(f'count({sel("genesys_queue_source", extra=",source=" + chr(34) + "poll" + chr(34))} == 1) or vector(0)', "poll", "B", instant=True),
            target(f'count({sel("genesys_queue_source", extra=",source=" + chr(34) + "none" + chr(34))} == 1) or vector(0)', "none", "C", instant=True)],
            color_mode="value", description="How many selected queues each source serves."), 6),
        (stat("Stale queues", [target(f'count({sel("genesys_queue_stale")} == 1) or vector(0)', "stale",
                                      instant=True)],
              th=thresholds(("green", None), ("orange", 1))), 4),
        (stat("Channels / topics", [target("sum(genesys_notification_channels)", "channels", instant=True),
                                    target("sum(genesys_notification_topics)", "topics", "B", instant=True)],
              color_mode="value", description="Notification channels (max 20 per OAuth client) and topics "
                                              "(max 1,000 per channel)."), 5),
        (stat("Token expires in", [target("min(genesys_token_expiry_timestamp_seconds) - time()", "expires in",
                                          instant=True)], unit="s",
              th=thresholds(("red", None), ("orange", 60), ("green", 300)), color_mode="value"), 5),
    ], 4)
    p.row("Stream")
    p.line([
        (timeseries("Queues by source", [target(
            f'count by (source) ({sel("genesys_queue_source")} == 1)', "{{source}}")], stack=True,
            description="Stream vs poll: the fallback to polling shows here."), 8),
        (timeseries("Channels and topics", [target("sum(genesys_notification_channels)", "channels"),
                                            target("sum(genesys_notification_topics)", "topics", "B")]), 8),
        (timeseries("Reconnects by reason", [target(
            f'sum by (reason) (increase(genesys_notification_reconnects_total[{RI}])) or on () {none_label("reason")}',
            "{{reason}}")], description="Channel reconnects; 'none' (0) when there were none."), 8),
    ], 8)
    p.line([
        (timeseries("Heartbeat age", [target("max(genesys_notification_heartbeat_age_seconds)", "heartbeat age")],
                    unit="s", th=thresholds(("green", None), ("red", 120)),
                    description="Seconds since the last frame on the least recently heard channel (Genesys sends "
                                "a heartbeat every 30 s; GenesysStreamStale above 120 s)."), 8),
        (timeseries("Delivery latency", [
            target(f'histogram_quantile(0.5, sum by (le) (rate(genesys_notification_delivery_latency_seconds_bucket[{RI}])))', "p50"),
            target(f'histogram_quantile(0.99, sum by (le) (rate(genesys_notification_delivery_latency_seconds_bucket[{RI}])))', "p99", "B")],
            unit="s", description="Notification event time to applied in the store."), 8),
        (timeseries("Messages by kind", [target(
            f'sum by (kind) (rate(genesys_notification_messages_total[{RI}])) or on () {none_label("kind")}', "{{kind}}")],
            unit="reqps", description="WebSocket frames per second, by kind."), 8),
    ], 8)
    p.row("REST API")
    p.line([
        (timeseries("API budget used (requests/min)", [
            target(f'sum(rate(genesys_api_requests_total[{RI}])) * 60 or vector(0)', "requests/min"),
            target("min(genesys_api_rate_limit_remaining)", "rate-limit remaining", "B")],
            th=thresholds(("green", None), ("red", 300)),
            description="Requests per minute against the 300/min client-credentials token budget, and the "
                        "remaining requests reported by Genesys (inin-ratelimit headers)."), 8),
        (timeseries("Requests by endpoint and code", [target(
            f'sum by (endpoint, code) (rate(genesys_api_requests_total[{RI}])) * 60 or on () {none_label("endpoint")}',
            "{{endpoint}} {{code}}")], description="Requests per minute."), 8),
        (timeseries("Request duration p99", [target(
            f'histogram_quantile(0.99, sum by (le, endpoint) (rate(genesys_api_request_duration_seconds_bucket[{RI}])))'
            f' or on () {none_label("endpoint")}', "{{endpoint}}")], unit="s"), 8),
    ], 8)
    p.line([
        (timeseries("429 Too Many Requests", [target(
            f'sum(increase(genesys_api_throttled_total[{RI}])) or vector(0)', "429s")],
            description="Throttled requests (GenesysApiThrottled above 3 in 10m)."), 8),
        (timeseries("Payload errors by kind", [target(
            f'sum by (kind) (increase(genesys_payload_errors_total[{RI}])) or on () {none_label("kind")}', "{{kind}}")],
            description="Frames or answers that could not be used, counted and skipped."), 8),
        (timeseries("Poll cycle and drift", [
            target("max(genesys_poll_cycle_seconds)", "poll cycle (s)"),
            target(f'sum(increase(genesys_stream_drift_total[{RI}])) or vector(0)', "drift corrections", "B")],
            description="Achieved polling period; values the reconciliation corrected."), 8),
    ], 8)
    p.row("Freshness per queue")
    p.line([
        (timeseries("Data age by queue", [target(
            f'max by (queue) ({sel("genesys_queue_data_age_seconds")})', "{{queue}}")], unit="s",
            th=thresholds(("green", None), ("red", 180)),
            description="Seconds since any source confirmed the queue (GenesysQueueDataStale above 180 s)."), 12),
        (table("Source per queue", [
            target(f'max by (queue, source) ({sel("genesys_queue_source")} == 1)', "{{queue}}", instant=True,
                   fmt="table"),
            target(f'max by (queue) ({sel("genesys_queue_data_age_seconds")})', "{{queue}}", "B", instant=True,
                   fmt="table")],
            description="Which source serves each queue (stream, poll, none) and its data age."), 12),
    ], 9)
    p.line([
        (table("Build", [target("max by (version, revision) (genesys_exporter_build_info)", "", instant=True,
                                fmt="table")]), 12),
        (timeseries("OTLP export failures", [target(
            f'sum(increase(genesys_otlp_export_failures_total[{RI}])) or vector(0)', "failures")]), 12),
    ], 5)
    return dashboard("Genesys Cloud / Exporter health", "exporter-health", p, "30s",
                     "Stream vs poll, channels, reconnects, heartbeats, latency, API budget, errors, data age.",
                     ["exporter"])


for d, slug in (wallboard(), agents(), health()):
    with open(os.path.join(HERE, slug + ".json"), "w", encoding="utf-8") as f:
        json.dump(d, f, indent=2, ensure_ascii=False)
        f.write("\n")
