//! Horizontal sharding against the simulator: three replicas with `--shard=i --total-shards=3` over 3000 queues
//! export every queue exactly once, and restarting one replica does not move queues between the others.

mod support;

use genesys_cloud_exporter::app::{shard, Exporter};
use genesys_cloud_exporter::sim::SimConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

async fn owned(http: &reqwest::Client, e: &Exporter) -> BTreeSet<String> {
    let text = http.get(format!("{}/metrics", e.url())).send().await.expect("scrape").text().await.expect("body");
    support::prom::parse(&text)
        .into_iter()
        .filter(|s| s.name == "genesys_queue_info")
        .map(|s| s.label("queue_id").to_owned())
        .collect()
}

async fn start_shard(base: &str, i: u32) -> Exporter {
    let mut o = support::fast_options(base);
    o.collector.shard = shard(i, 3);
    support::start_exporter(o).await
}

/// Wait until every replica is ready, then return what each exports.
async fn settle(http: &reqwest::Client, shards: &[Exporter], total: usize) -> Vec<BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut sets = Vec::new();
        for e in shards {
            sets.push(owned(http, e).await);
        }
        if sets.iter().map(BTreeSet::len).sum::<usize>() >= total && shards.iter().all(|e| e.readiness.ready()) {
            return sets;
        }
        assert!(
            Instant::now() < deadline,
            "shards did not settle: {:?}",
            sets.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_export_every_queue_exactly_once() {
    let mut cfg = SimConfig::default();
    cfg.model.queues = 3000;
    cfg.model.arrivals_per_hour = 0.0;
    let sim = support::start_sim(cfg).await;
    let base = sim.base_url();
    let http = reqwest::Client::new();
    let mut shards = Vec::new();
    for i in 0..3 {
        shards.push(start_shard(&base, i).await);
    }
    let sets = settle(&http, &shards, 3000).await;
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sets {
        for q in s {
            *count.entry(q.as_str()).or_default() += 1;
        }
    }
    let truth: BTreeSet<String> = sim.truth().queues.into_iter().map(|q| q.id).collect();
    assert_eq!(truth.len(), 3000);
    for q in &truth {
        assert_eq!(count.get(q.as_str()).copied(), Some(1), "queue {q} is exported by exactly one shard");
    }
    let sizes: Vec<usize> = sets.iter().map(BTreeSet::len).collect();
    eprintln!("shard sizes: {sizes:?}");
    assert!(sizes.iter().all(|&n| n > 800 && n < 1200), "jump hash spreads evenly: {sizes:?}");

    // Restart shard 1: the others keep exactly their queues, and shard 1 gets its own back.
    let restarted = shards.remove(1);
    restarted.stop().await.expect("shard 1 stops");
    let again = start_shard(&base, 1).await;
    shards.insert(1, again);
    let after = settle(&http, &shards, 3000).await;
    assert_eq!(after, sets, "a shard's restart moves no queue");
    for e in shards {
        e.stop().await.expect("stops");
    }
    sim.shutdown().await;
}
