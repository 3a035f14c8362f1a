//! What the micro-benchmarks share: which sizes to run, and the thread's on-CPU time.

/// `--quick`: one tiny size (the test command's run); `--sizes 10000,20000`: only those (one row when iterating on
/// a change); otherwise the growth curve.
pub fn sizes() -> (bool, Vec<usize>) {
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Option<Vec<usize>> = std::env::args()
        .skip_while(|a| a != "--sizes")
        .nth(1)
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let sizes = match (quick, only) {
        (true, _) => vec![100],
        (false, Some(s)) => s,
        (false, None) => vec![100, 1_000, 10_000, 20_000],
    };
    (quick, sizes)
}

/// The calling thread's on-CPU time in ns (`/proc/thread-self/schedstat`): steadier than wall time on a shared VM.
pub fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}
