//! Polling fallback: every `poll_interval`, read the queues the stream cannot serve right now with the batched
//! observations and aggregates queries. The shared budget paces the calls; when it cannot keep up, cycles simply
//! take longer, and `genesys_poll_cycle_seconds` reports the period actually achieved.

use super::Shared;
use crate::genesys::Priority;
use std::sync::Arc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let period_of = |s: &Shared| s.settings().poll_interval.max(std::time::Duration::from_secs(1));
    let mut period = period_of(&shared);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_start: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A reload may have changed the period.
        if period_of(&shared) != period {
            period = period_of(&shared);
            tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        }
        let ids = shared.poll_ids();
        if ids.is_empty() {
            last_start = None;
            shared.metrics.poll_cycle_seconds.set(0.0);
            continue;
        }
        let started = Instant::now();
        if let Some(prev) = last_start {
            shared.metrics.poll_cycle_seconds.set(started.duration_since(prev).as_secs_f64());
        }
        last_start = Some(started);
        let asked = std::time::Instant::now();
        let read = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = shared.reader.read(&ids, Priority::Poll) => r,
        };
        match read {
            Ok(read) => {
                // Queues whose stream recovered, or delivered a topic message, while the read was in flight keep
                // their newer values (see `Shared::apply_poll`).
                let applied = shared.apply_poll(read, asked);
                tracing::debug!(queues = ids.len(), applied = applied.len(), took = ?started.elapsed(), "poll cycle done");
            }
            Err(e) => tracing::warn!(err = %e, queues = ids.len(), "poll cycle failed"),
        }
    }
}
