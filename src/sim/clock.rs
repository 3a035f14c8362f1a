//! Real time → model time: `model = start + (elapsed_real − paused) × speed`. Pausing freezes model time (the
//! `pause` fault), so a test can compare against a truth that holds still.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct SimClock {
    /// Model time at start, epoch ms.
    pub start_ms: i64,
    /// Wall clock at start, epoch ms.
    pub start_wall_ms: i64,
    pub speed: f64,
    started: Instant,
    pause: Mutex<PauseState>,
}

#[derive(Debug, Default)]
struct PauseState {
    since: Option<Instant>,
    total: Duration,
    /// Model time jumped over (`advance` fault), ms.
    skipped_ms: i64,
}

impl SimClock {
    pub fn new(start_ms: Option<i64>, speed: f64) -> SimClock {
        let wall = chrono::Utc::now().timestamp_millis();
        SimClock {
            start_ms: start_ms.unwrap_or(wall),
            start_wall_ms: wall,
            speed,
            started: Instant::now(),
            pause: Mutex::new(PauseState::default()),
        }
    }

    /// Real time the model has been running (excluding pauses).
    fn running(&self) -> Duration {
        let p = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        let now = p.since.unwrap_or_else(Instant::now);
        now.saturating_duration_since(self.started).saturating_sub(p.total)
    }

    /// Model time now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        let skipped = self.pause.lock().unwrap_or_else(|e| e.into_inner()).skipped_ms;
        self.start_ms + skipped + (self.running().as_secs_f64() * self.speed * 1000.0) as i64
    }

    /// Jump model time forward by `d` (paused or not): the model catches up on its next tick, so a test can walk
    /// through a known scenario (interval rollovers) without waiting for it.
    pub fn skip(&self, d: Duration) {
        let mut p = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        p.skipped_ms = p.skipped_ms.saturating_add(d.as_millis().min(i64::MAX as u128) as i64);
    }

    /// Wall clock now, epoch ms.
    pub fn wall_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    /// A model-time duration as the real time a client waits for it.
    pub fn to_real(&self, model: Duration) -> Duration {
        model.div_f64(self.speed)
    }

    pub fn pause(&self) {
        let mut p = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        if p.since.is_none() {
            p.since = Some(Instant::now());
        }
    }

    pub fn resume(&self) {
        let mut p = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = p.since.take() {
            p.total += since.elapsed();
        }
    }

    pub fn is_paused(&self) -> bool {
        self.pause.lock().unwrap_or_else(|e| e.into_inner()).since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_freezes_model_time() {
        let c = SimClock::new(Some(1_000_000), 100.0);
        c.pause();
        let a = c.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.now_ms(), a);
        c.resume();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now_ms() >= a + 1000, "speed 100: 20 ms real is 2 s model");
        assert_eq!(c.to_real(Duration::from_secs(100)), Duration::from_secs(1));
        c.pause();
        let b = c.now_ms();
        c.skip(Duration::from_secs(60));
        assert_eq!(c.now_ms(), b + 60_000, "a skip moves paused model time by exactly that much");
    }
}
