//! Fault injection: what `POST /sim/faults` accepts, what [`crate::sim::SimHandle::inject`] applies, and the steps
//! of a scenario file. Every fault is observable by a plain client; `docs/simulator.md` shows JSON for each.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One fault or traffic change. JSON: `{"kind":"<snake_case name>", ...fields}`. `channel: null`/absent = every
/// channel. Durations are real seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Drop the TCP connection of the sockets (no close frame). Channels survive: reconnecting works.
    DropSockets {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Send nothing at all (no messages, heartbeats or pongs) for `seconds`; TCP stays open.
    StallSockets {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        seconds: f64,
    },
    /// Messages still flow, but no heartbeats and no pongs for `seconds`.
    HeartbeatLoss {
        seconds: f64,
    },
    /// Push `v2.system.socket_closing` to every socket, close those sockets after the grace period.
    SocketClosing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_seconds: Option<f64>,
    },
    /// The channel (or every channel) expires now: socket closed, HEAD/subscriptions/upgrade 404.
    ExpireChannel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Push `v2.system.token_revoked.<channel id>` to every socket and close it; every token then gets 401.
    RevokeTokens,
    /// The next `count` API requests answer `status` (e.g. 503) with a Genesys error body.
    ErrorBurst {
        count: u32,
        status: u16,
    },
    /// Every API request answers 429 (with Retry-After) for `seconds`.
    RateLimitStorm {
        seconds: f64,
    },
    /// Delay every HTTP response by `ms` for `seconds` (absent: until the next latency fault; `ms: 0` clears).
    Latency {
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<f64>,
    },
    /// Observations-query answers naming this queue are computed when the request arrives but sent only at the
    /// matching `release_answers`: a REST snapshot older than everything that happens while it is held (a read in
    /// flight, e.g. one that waited behind a 429 while topic messages kept coming).
    HoldAnswers {
        queue_id: String,
    },
    /// Send the held answers naming `queue_id` (absent: all of them) and stop holding for it (absent: for all).
    ReleaseAnswers {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_id: Option<String>,
    },
    /// Send one text frame that is not valid JSON.
    MalformedFrame {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Send one valid JSON text frame of `bytes` bytes (`channel.metadata` with a padded message).
    OversizedFrame {
        bytes: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    AddQueue {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        division: Option<String>,
    },
    RemoveQueue {
        id: String,
    },
    RenameQueue {
        id: String,
        name: String,
    },
    AddPresenceDefinition {
        label: String,
        system_presence: String,
    },
    /// Topics of this queue need a permission the client lacks: 403 for the whole subscription request, or
    /// `Rejected` with `missingPermissions` when `ignoreErrors=true`.
    ForbidTopic {
        queue_id: String,
    },
    /// `on: true`: the model keeps changing but no messages are sent for this queue (reconciliation tests).
    SilenceTopic {
        queue_id: String,
        on: bool,
    },
    /// Put `count` customers in a queue now.
    Arrive {
        queue_id: String,
        #[serde(default = "voice")]
        media_type: String,
        #[serde(default = "one")]
        count: u64,
    },
    /// Jump model time forward by `seconds` (paused or not); the model processes everything due meanwhile.
    Advance {
        seconds: f64,
    },
    /// Every customer waiting in a queue (any media type) hangs up now: a long wait clears.
    AbandonWaiting {
        queue_id: String,
    },
    /// Arrival rate of every queue (model hours); 0 stops new arrivals.
    SetArrivals {
        per_hour: f64,
    },
    /// Freeze model time (and so the truth).
    Pause,
    Resume,
    /// As if the service restarted: every channel (sockets dropped) and every token is gone.
    Restart,
}

fn voice() -> String {
    "voice".to_owned()
}

fn one() -> u64 {
    1
}

impl Fault {
    /// The `kind` tag (`drop_sockets`, …), also the key of its counter in `GET /sim/stats`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::DropSockets { .. } => "drop_sockets",
            Fault::StallSockets { .. } => "stall_sockets",
            Fault::HeartbeatLoss { .. } => "heartbeat_loss",
            Fault::SocketClosing { .. } => "socket_closing",
            Fault::ExpireChannel { .. } => "expire_channel",
            Fault::RevokeTokens => "revoke_tokens",
            Fault::ErrorBurst { .. } => "error_burst",
            Fault::RateLimitStorm { .. } => "rate_limit_storm",
            Fault::Latency { .. } => "latency",
            Fault::HoldAnswers { .. } => "hold_answers",
            Fault::ReleaseAnswers { .. } => "release_answers",
            Fault::MalformedFrame { .. } => "malformed_frame",
            Fault::OversizedFrame { .. } => "oversized_frame",
            Fault::AddQueue { .. } => "add_queue",
            Fault::RemoveQueue { .. } => "remove_queue",
            Fault::RenameQueue { .. } => "rename_queue",
            Fault::AddPresenceDefinition { .. } => "add_presence_definition",
            Fault::ForbidTopic { .. } => "forbid_topic",
            Fault::SilenceTopic { .. } => "silence_topic",
            Fault::Arrive { .. } => "arrive",
            Fault::AbandonWaiting { .. } => "abandon_waiting",
            Fault::Advance { .. } => "advance",
            Fault::SetArrivals { .. } => "set_arrivals",
            Fault::Pause => "pause",
            Fault::Resume => "resume",
            Fault::Restart => "restart",
        }
    }
}

/// One timed step: apply `fault` `at` real seconds after the simulator started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    pub at: f64,
    pub fault: Fault,
}

/// A scenario file: a YAML (or JSON) list of [`ScenarioStep`]s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scenario {
    pub steps: Vec<ScenarioStep>,
}

impl Scenario {
    pub fn from_yaml(text: &str) -> anyhow::Result<Scenario> {
        let mut s: Scenario = serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        for st in &s.steps {
            anyhow::ensure!(st.at.is_finite() && st.at >= 0.0, "step at {}: `at` must be seconds >= 0", st.at);
        }
        s.steps.sort_by(|a, b| a.at.total_cmp(&b.at));
        Ok(s)
    }

    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)?;
        Scenario::from_yaml(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_yaml() {
        let s = Scenario::from_yaml(
            "- at: 2\n  fault: {kind: socket_closing, grace_seconds: 1}\n- at: 0.5\n  fault:\n    kind: arrive\n    queue_id: q1\n    count: 3\n- at: 1\n  fault: {kind: pause}\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].fault, Fault::Arrive { queue_id: "q1".into(), media_type: "voice".into(), count: 3 });
        assert_eq!(s.steps[1].fault, Fault::Pause);
        assert_eq!(s.steps[2].fault, Fault::SocketClosing { grace_seconds: Some(1.0) });
        assert!(Scenario::from_yaml("- at: 1\n  fault: {kind: nope}\n").is_err());
    }

    #[test]
    fn fault_json_tags() {
        let f: Fault = serde_json::from_str(r#"{"kind":"error_burst","count":3,"status":503}"#).unwrap();
        assert_eq!(f, Fault::ErrorBurst { count: 3, status: 503 });
        assert_eq!(f.kind(), "error_burst");
        let v = serde_json::to_value(Fault::RevokeTokens).unwrap();
        assert_eq!(v, serde_json::json!({"kind":"revoke_tokens"}));
    }
}
