//! Capacity of the simulator's traffic model: 20,000 queues with a raised arrival rate, model time advanced one
//! simulated second at a time and `take_messages` called once per simulated second (Genesys's topic rate), on one
//! core. Prints messages generated + serialized per CPU second, split into the model's event processing
//! (`advance_to`) and message building (`take_messages`). The phases are timed with the wall clock (the thread's
//! CPU time from /proc has scheduler-tick resolution); the whole loop's CPU time is printed next to its wall time,
//! so a busy machine shows as CPU < wall.
//!
//! `cargo bench --bench sim_throughput` prints the table; `cargo bench --bench sim_throughput -- --quick` (and the
//! test command, `cargo test --bench sim_throughput -- --quick`) runs one tiny size.

use genesys_cloud_exporter::sim::model::{Model, ModelConfig, TopicMessage};
use std::time::{Duration, Instant};

/// CPU time of this thread (Linux `/proc/thread-self/schedstat`, ns on CPU), else wall time since `fallback`.
fn cpu_time(fallback: Instant) -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_else(|| fallback.elapsed())
}

struct Run {
    queues: usize,
    seconds: i64,
    messages: usize,
    bytes: usize,
    advance: Duration,
    take: Duration,
    /// CPU time of the thread over the measured loop (scheduler-tick resolution, fine over seconds).
    cpu: Duration,
    wall: Duration,
    events: usize,
}

fn run(queues: usize, arrivals_per_hour: f64, warmup_s: i64, seconds: i64) -> Run {
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let cfg = ModelConfig { queues, agents_per_queue: 8, seed: 7, arrivals_per_hour, ..ModelConfig::default() };
    let mut model = Model::new(cfg, t0);
    let mut out: Vec<TopicMessage> = Vec::with_capacity(queues);
    // Warm up: queues fill to their steady state (patience bounds them); messages are taken but not counted.
    for s in 1..=warmup_s {
        model.advance_to(t0 + s * 1000);
        out.clear();
        model.take_messages(&mut out);
    }
    let wall = Instant::now();
    let cpu0 = cpu_time(wall);
    let (mut advance, mut take) = (Duration::ZERO, Duration::ZERO);
    let (mut messages, mut bytes) = (0usize, 0usize);
    for s in 1..=seconds {
        let a = Instant::now();
        model.advance_to(t0 + (warmup_s + s) * 1000);
        let b = Instant::now();
        out.clear();
        model.take_messages(&mut out);
        let c = Instant::now();
        advance += b - a;
        take += c - b;
        messages += out.len();
        bytes += out.iter().map(|m| m.json.len()).sum::<usize>();
        std::hint::black_box(&out);
    }
    let cpu = cpu_time(wall) - cpu0;
    Run { queues, seconds, messages, bytes, advance, take, cpu, wall: wall.elapsed(), events: model.pending_events() }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Voice arrivals per queue per hour; the other media add 60 % on top (see the model's rules).
    let sizes: &[(usize, f64, i64, i64)] =
        if quick { &[(200, 3600.0, 5, 5)] } else { &[(1_000, 3600.0, 120, 60), (20_000, 3600.0, 120, 60)] };
    println!("| queues | simulated s | messages | msg/s of model time | bytes/msg | advance_to | take_messages | loop wall | loop CPU | messages per CPU second | serialize-only msg/s | pending events |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &(queues, rate, warmup, seconds) in sizes {
        let r = run(queues, rate, warmup, seconds);
        let cpu = if r.cpu.is_zero() { r.advance + r.take } else { r.cpu };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} | {:.0} | {} |",
            r.queues,
            r.seconds,
            r.messages,
            r.messages as f64 / r.seconds as f64,
            r.bytes as f64 / r.messages.max(1) as f64,
            r.advance.as_secs_f64() * 1e3,
            r.take.as_secs_f64() * 1e3,
            r.wall.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            r.messages as f64 / cpu.as_secs_f64().max(1e-9),
            r.messages as f64 / r.take.as_secs_f64().max(1e-9),
            r.events,
        );
        assert!(r.messages > 0, "the model produced no messages");
    }
}
