//! One API budget for every REST call the process makes.
//!
//! Genesys allows a client-credentials token a number of requests per minute (300 by default; the
//! `inin-ratelimit-allowed` header says the real figure). The exporter may spend `budget_share` of it, leaving the
//! rest to the org's other integrations on the same client. A token bucket refilled at that rate gates every call;
//! when callers compete, the more urgent kind goes first (re-seed > poll > reconcile > discovery). After a 429 no call
//! is sent before `Retry-After` has passed.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Why a call is made, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Filling a gap after a (re)connect: data is missing right now.
    Reseed = 0,
    /// Serving queues whose stream is unhealthy.
    Poll = 1,
    /// Channel and subscription management: without it the stream stops.
    Channel = 2,
    /// Checking a healthy stream against REST.
    Reconcile = 3,
    /// Re-listing queues and presence definitions.
    Discovery = 4,
}

const PRIORITIES: usize = 5;

#[derive(Debug)]
struct State {
    /// Requests per minute this process may spend.
    per_minute: f64,
    share: f64,
    tokens: f64,
    last_refill: Instant,
    paused_until: Option<Instant>,
    waiting: [usize; PRIORITIES],
    remaining: Option<f64>,
}

#[derive(Debug)]
pub struct RateBudget {
    state: Mutex<State>,
}

/// Default `inin-ratelimit-allowed` when no header has been seen yet.
pub const DEFAULT_ALLOWED_PER_MINUTE: f64 = 300.0;

impl RateBudget {
    pub fn new(share: f64) -> Self {
        let share = share.clamp(0.01, 1.0);
        let per_minute = DEFAULT_ALLOWED_PER_MINUTE * share;
        RateBudget {
            state: Mutex::new(State {
                per_minute,
                share,
                tokens: Self::burst(per_minute),
                last_refill: Instant::now(),
                paused_until: None,
                waiting: [0; PRIORITIES],
                remaining: None,
            }),
        }
    }

    /// Up to ten seconds' worth of calls may go at once (start-up seeding), never less than one.
    fn burst(per_minute: f64) -> f64 {
        (per_minute / 6.0).max(1.0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests per minute this process may spend now.
    pub fn per_minute(&self) -> f64 {
        self.lock().per_minute
    }

    /// The last `allowed - count` the API reported, if any.
    pub fn remaining(&self) -> Option<f64> {
        self.lock().remaining
    }

    /// Wait for permission to send one request.
    pub async fn acquire(&self, priority: Priority) {
        let p = priority as usize;
        let mut registered = false;
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                refill(&mut s, now);
                let higher_waiting = s.waiting[..p].iter().any(|&n| n > 0);
                match s.paused_until {
                    Some(until) if until > now => Some(until - now),
                    _ if s.tokens >= 1.0 && !higher_waiting => {
                        s.tokens -= 1.0;
                        if registered {
                            s.waiting[p] -= 1;
                        }
                        None
                    }
                    _ => {
                        if !registered {
                            s.waiting[p] += 1;
                            registered = true;
                        }
                        let per_sec = s.per_minute / 60.0;
                        let need = (1.0 - s.tokens).max(0.0);
                        // Lower priorities re-check a little later so a higher one wins a fresh token.
                        let base = if per_sec > 0.0 { need / per_sec } else { 1.0 };
                        Some(Duration::from_secs_f64(base.max(0.005)) + Duration::from_millis(5 * p as u64))
                    }
                }
            };
            match wait {
                None => return,
                Some(d) => {
                    let guard = WaitGuard { budget: self, p, active: registered };
                    tokio::time::sleep(d).await;
                    std::mem::forget(guard);
                }
            }
        }
    }

    /// Learn from the `inin-ratelimit-*` headers of an answer.
    pub fn observe(&self, allowed: Option<f64>, count: Option<f64>, reset_secs: Option<f64>) {
        let mut s = self.lock();
        if let Some(a) = allowed.filter(|a| *a > 0.0) {
            let per_minute = a * s.share;
            if (per_minute - s.per_minute).abs() > f64::EPSILON {
                s.per_minute = per_minute;
                s.tokens = s.tokens.min(Self::burst(per_minute));
            }
        }
        if let (Some(a), Some(c)) = (allowed, count) {
            let remaining = (a - c).max(0.0);
            s.remaining = Some(remaining);
            // Slow down before a 429: with nothing left in this window, wait for its reset.
            if remaining < 1.0 {
                if let Some(r) = reset_secs.filter(|r| *r > 0.0 && *r <= 120.0) {
                    let until = Instant::now() + Duration::from_secs_f64(r);
                    s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
                }
            }
        }
    }

    /// A 429 said `Retry-After`: nothing is sent before it has passed (plus jitter so replicas do not stampede).
    pub fn pause_for(&self, retry_after: Duration) {
        let jitter = Duration::from_millis(fastrand::u64(0..=250));
        let until = Instant::now() + retry_after + jitter;
        let mut s = self.lock();
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        s.tokens = 0.0;
    }

    /// The instant before which no request may be sent, if paused.
    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|u| *u > Instant::now())
    }
}

fn refill(s: &mut State, now: Instant) {
    let dt = now.saturating_duration_since(s.last_refill).as_secs_f64();
    s.last_refill = now;
    s.tokens = (s.tokens + dt * s.per_minute / 60.0).min(RateBudget::burst(s.per_minute));
}

/// Keeps the waiter count right if the acquiring future is dropped mid-wait (e.g. by a timeout or shutdown).
struct WaitGuard<'a> {
    budget: &'a RateBudget,
    p: usize,
    active: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.active {
            let mut s = self.budget.lock();
            s.waiting[self.p] = s.waiting[self.p].saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_is_respected() {
        let b = RateBudget::new(0.5); // 150/min = 2.5/s, burst 25
        let start = tokio::time::Instant::now();
        for _ in 0..50 {
            b.acquire(Priority::Poll).await;
        }
        // 25 from the burst, 25 more at 2.5/s ≈ 10 s.
        let took = start.elapsed().as_secs_f64();
        assert!((9.0..12.0).contains(&took), "took {took}");
    }

    #[tokio::test(start_paused = true)]
    async fn pause_blocks_until_retry_after() {
        let b = RateBudget::new(1.0);
        b.pause_for(Duration::from_secs(7));
        let start = tokio::time::Instant::now();
        b.acquire(Priority::Reseed).await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }

    #[test]
    fn header_sets_rate() {
        let b = RateBudget::new(0.5);
        b.observe(Some(180.0), Some(10.0), Some(30.0));
        assert_eq!(b.per_minute(), 90.0);
        assert_eq!(b.remaining(), Some(170.0));
        b.observe(Some(180.0), Some(180.0), Some(20.0));
        assert!(b.paused_until().is_some());
    }
}
