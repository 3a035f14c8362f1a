//! Keeps the sources alive and decides, per queue, whether the stream or polling serves it.
//!
//! The manager discovers queues, spreads their topics over notification channels (at most
//! `topics_per_channel` each, at most `max_channels`), runs one [`channel::ChannelRunner`] per channel and one
//! [`poller`] for every queue the stream cannot serve right now (channel down, topic rejected, re-seed failed). It
//! never parses a payload (that is `genesys::decode`) and never renders one (that is `state`).

pub mod backoff;
pub mod channel;
pub mod directory;
pub mod holdback;
pub mod poller;
pub mod seed;
pub mod shard;

use crate::genesys::decode::Decoded;
use crate::genesys::{ApiClient, Error, Priority};
use crate::model::{now_ms, ChannelClock, QueueMeta, Readiness, Source};
use crate::state::{PresenceDef, Store};
use crate::telemetry::{LogLimiter, SelfMetrics};
use directory::QueueFilter;
use seed::{ReadResult, Reader};
use shard::Shard;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// What the collector needs from the configuration.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub divisions: Vec<String>,
    pub refresh_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub poll_interval: Duration,
    pub reconcile_interval: Duration,
    pub ping_interval: Duration,
    pub topics_per_channel: usize,
    pub max_channels: usize,
    pub shard: Shard,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        CollectorSettings {
            include: vec![],
            exclude: vec![],
            divisions: vec![],
            refresh_interval: Duration::from_secs(300),
            heartbeat_timeout: Duration::from_secs(45),
            poll_interval: Duration::from_secs(10),
            reconcile_interval: Duration::from_secs(300),
            ping_interval: Duration::from_secs(20),
            topics_per_channel: 1000,
            max_channels: 20,
            shard: Shard::ALL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("could not authenticate with Genesys Cloud: {0}")]
    Auth(#[source] Error),
    #[error("could not list queues: {0}")]
    Discovery(#[source] Error),
    #[error(
        "{queues} queues need {needed} notification channels but Genesys allows {max} per OAuth client; \
         split the queues across replicas with --shard/--total-shards, each replica with its own OAuth client, \
         or narrow queues.include"
    )]
    TooManyChannels { queues: usize, needed: usize, max: usize },
}

/// State shared by the manager, the channel runners and the poller.
pub struct Shared {
    pub store: Store,
    pub metrics: Arc<SelfMetrics>,
    pub reader: Reader,
    /// The running settings; a config reload replaces them ([`Shared::update_settings`]).
    settings: watch::Sender<Arc<CollectorSettings>>,
    pub readiness: Arc<Readiness>,
    pub log: LogLimiter,
    /// Queues served by polling, with why.
    poll: Mutex<BTreeMap<String, &'static str>>,
    /// Queues whose topic Genesys rejected: polled until the next discovery.
    rejected: Mutex<HashSet<String>>,
    /// Queues that have not had a complete read yet (for `/readyz`).
    unseeded: Mutex<HashSet<String>>,
    presence_refresh: Notify,
    /// When each queue last had a topic message applied. A poll read asked before that may be older than the
    /// message (a socket can stream while its re-seed keeps failing), so the poller leaves such a queue alone.
    /// Also the lock that orders what lands on a queue: a topic message is applied, a poll read is checked and
    /// applied, and the stream takes queues back ([`Shared::healthy`]) each while holding it, so no message or
    /// re-seed lands between a poll read's check and its apply (they did, when a 429 released both at once).
    streamed: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The settings in force now. Tasks read them at each use, so a reload reaches running channels.
    pub fn settings(&self) -> Arc<CollectorSettings> {
        self.settings.borrow().clone()
    }

    /// Replace the settings (config reload). Queue filters and the refresh interval take effect at once (with an
    /// immediate re-discovery); the channel layout (`topics_per_channel`, `max_channels`) and the shard are fixed
    /// for the life of the process, so those fields keep their running values.
    pub fn update_settings(&self, mut new: CollectorSettings) {
        let old = self.settings();
        new.topics_per_channel = old.topics_per_channel;
        new.max_channels = old.max_channels;
        new.shard = old.shard;
        self.settings.send_replace(Arc::new(new));
    }

    /// Apply one decoded update, counting what could not be used. Returns how many stored values it changed.
    pub fn apply_decoded(&self, d: Decoded, raw: Option<&str>) -> usize {
        if d.update.source != Source::Stream {
            return self.apply_unordered(d, raw);
        }
        let mut streamed = lock(&self.streamed);
        let now = Instant::now();
        match streamed.get_mut(&d.update.queue_id) {
            Some(t) => *t = now,
            None => {
                streamed.insert(d.update.queue_id.clone(), now);
            }
        }
        self.apply_unordered(d, raw)
    }

    /// [`Shared::apply_decoded`] without recording or ordering a topic message: REST reads, or under the order lock.
    fn apply_unordered(&self, d: Decoded, raw: Option<&str>) -> usize {
        for m in &d.unknown_metrics {
            self.payload_error("unknown_metric", Some(m), raw.unwrap_or(m));
        }
        for m in &d.bad_metrics {
            self.payload_error("wrong_type", Some(m), raw.unwrap_or(m));
        }
        let event_ms = d.update.event_ms;
        let from_stream = d.update.source == Source::Stream;
        let outcome = self.store.apply(d.update);
        if outcome.unknown_queue {
            // Not ours (another shard's, or removed since): harmless, but worth a count.
            self.metrics.payload_errors_total.with_label_values(&["unknown_queue"]).inc();
        }
        if outcome.unknown_presence {
            self.presence_refresh.notify_one();
        }
        if from_stream {
            if let Some(ev) = event_ms {
                let lag = (now_ms() - ev) as f64 / 1000.0;
                if lag >= 0.0 {
                    self.metrics.notification_delivery_latency_seconds.observe(lag);
                }
            }
        }
        usize::from(outcome.changed)
    }

    /// Apply a REST read: complete observations, then interval aggregates. Returns how many queue groups it changed
    /// (drift, when the stream was healthy).
    pub fn apply_read(&self, read: ReadResult) -> usize {
        let ids: Vec<String> = read.observations.iter().map(|d| d.update.queue_id.clone()).collect();
        let mut changed = 0;
        for d in read.observations {
            changed += self.apply_decoded(d, None);
        }
        for u in read.aggregates {
            changed += self.apply_decoded(Decoded { update: u, unknown_metrics: vec![], bad_metrics: vec![] }, None);
        }
        self.mark_seeded(&ids);
        changed
    }

    /// Apply a poll read asked for at `asked`, queue by queue, unless the stream got there first: a queue no longer
    /// polled (its re-seed landed meanwhile, it may have waited out a 429 behind the budget) or one that applied a
    /// topic message since `asked` keeps what it has and its stream source, as the read may be older. Each queue is
    /// checked and applied under the order lock, so nothing lands between the two. Returns the queues applied.
    pub fn apply_poll(&self, read: ReadResult, asked: Instant) -> Vec<String> {
        let mut by_queue: BTreeMap<String, Vec<Decoded>> = BTreeMap::new();
        for d in read.observations {
            by_queue.entry(d.update.queue_id.clone()).or_default().push(d);
        }
        for u in read.aggregates {
            let d = Decoded { update: u, unknown_metrics: vec![], bad_metrics: vec![] };
            by_queue.entry(d.update.queue_id.clone()).or_default().push(d);
        }
        let mut applied = Vec::with_capacity(by_queue.len());
        let mut skipped = 0usize;
        for (id, updates) in by_queue {
            let streamed = lock(&self.streamed);
            let newer = streamed.get(&id).is_some_and(|t| *t >= asked);
            if newer || !lock(&self.poll).contains_key(&id) {
                skipped += 1;
                continue;
            }
            for d in updates {
                self.apply_unordered(d, None);
            }
            self.store.set_source(&id, Source::Poll);
            drop(streamed);
            applied.push(id);
        }
        if skipped > 0 {
            tracing::debug!(skipped, "poll read not applied to queues the stream updated since it was asked");
        }
        self.mark_seeded(&applied);
        applied
    }

    fn mark_seeded(&self, ids: &[String]) {
        let mut u = lock(&self.unseeded);
        for id in ids {
            u.remove(id);
        }
        if u.is_empty() {
            self.readiness.set_seeded(true);
            self.metrics.up.set(i64::from(self.readiness.ready()));
        }
    }

    /// Count a payload problem, and log it at most once per kind per minute with an excerpt.
    pub fn payload_error(&self, kind: &'static str, what: Option<&str>, raw: &str) {
        self.metrics.payload_errors_total.with_label_values(&[kind]).inc();
        if self.log.allow(kind) {
            tracing::warn!(kind, what, excerpt = %channel::excerpt(raw), "unusable payload (counted in genesys_payload_errors_total; further ones of this kind are not logged for a minute)");
        }
    }

    /// These queues cannot be served by the stream right now.
    pub fn to_poll(&self, ids: &[String], reason: &'static str) {
        let mut p = lock(&self.poll);
        for id in ids {
            if p.insert(id.clone(), reason).is_none() {
                self.store.set_stale(id, true);
            }
        }
    }

    /// The stream serves these queues again (connected and re-seeded), unless their topic was rejected. Under the
    /// order lock: a poll read checked before this must not set its source after it.
    pub fn healthy(&self, ids: &[String], clock: &Arc<ChannelClock>) {
        let _order = lock(&self.streamed);
        let rejected = lock(&self.rejected);
        let mut p = lock(&self.poll);
        let serving: Vec<String> = ids.iter().filter(|id| !rejected.contains(*id)).cloned().collect();
        for id in &serving {
            p.remove(id);
            self.store.set_stale(id, false);
            self.store.set_source(id, Source::Stream);
        }
        self.store.attach_channel(&serving, Some(clock.clone()));
    }

    pub fn set_rejected(&self, ids: &[String], rejected: bool) {
        if ids.is_empty() {
            return;
        }
        {
            let mut r = lock(&self.rejected);
            for id in ids {
                if rejected {
                    r.insert(id.clone());
                } else {
                    r.remove(id);
                }
            }
        }
        if rejected {
            self.store.attach_channel(ids, None);
            self.to_poll(ids, "rejected");
        }
    }

    /// Queues to poll now.
    pub fn poll_ids(&self) -> Vec<String> {
        lock(&self.poll).keys().cloned().collect()
    }

    fn forget(&self, ids: &HashSet<String>) {
        lock(&self.poll).retain(|k, _| !ids.contains(k));
        lock(&self.rejected).retain(|k| !ids.contains(k));
        lock(&self.unseeded).retain(|k| !ids.contains(k));
        lock(&self.streamed).retain(|k, _| !ids.contains(k));
    }
}

/// The collector: owns discovery and the channel runners.
pub struct Collector {
    shared: Arc<Shared>,
    filter: Mutex<QueueFilter>,
}

struct Slot {
    queues: Vec<String>,
    tx: watch::Sender<Vec<String>>,
}

impl Collector {
    pub fn new(
        api: ApiClient,
        store: Store,
        metrics: Arc<SelfMetrics>,
        readiness: Arc<Readiness>,
        settings: CollectorSettings,
    ) -> Self {
        let filter = QueueFilter::new(&settings.include, &settings.exclude, &settings.divisions);
        let shared = Arc::new(Shared {
            store,
            metrics,
            reader: Reader::new(api),
            settings: watch::Sender::new(Arc::new(settings)),
            readiness,
            log: LogLimiter::new(Duration::from_secs(60)),
            poll: Mutex::new(BTreeMap::new()),
            rejected: Mutex::new(HashSet::new()),
            unseeded: Mutex::new(HashSet::new()),
            presence_refresh: Notify::new(),
            streamed: Mutex::new(HashMap::new()),
        });
        Collector { shared, filter: Mutex::new(filter) }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Run until `shutdown`. Fails only on what a restart would not fix (bad credentials at start, too many
    /// queues for the channel limit); everything else is retried.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CollectorError> {
        let shared = self.shared.clone();
        let api = shared.reader.api().clone();
        let tasks = tokio_util::task::TaskTracker::new();
        // From here on every reload is seen by the loop below; one that came before is in the filter already.
        let mut reloads = shared.settings.subscribe();
        {
            let s = reloads.borrow_and_update().clone();
            *lock(&self.filter) = QueueFilter::new(&s.include, &s.exclude, &s.divisions);
        }

        // Log in first: a wrong secret should fail loudly at start, not as a stream of retries.
        api.tokens().token().await.map_err(CollectorError::Auth)?;
        shared.readiness.set_authenticated(true);
        // Not 1 yet: `genesys_up` promises fresh data, which only the first seed brings (the tick below follows).
        shared.metrics.up.set(i64::from(shared.readiness.ready()));
        tasks.spawn(api.tokens().clone().keep_fresh(shutdown.clone()));

        self.refresh_presence().await;
        let queues = self.discover().await.map_err(CollectorError::Discovery)?;
        let mut slots: Vec<Slot> = Vec::new();
        let mut clocks: Vec<Arc<ChannelClock>> = Vec::new();
        self.assign(&queues, &mut slots)?;
        self.apply_directory(queues);
        for (i, slot) in slots.iter().enumerate() {
            clocks.push(self.spawn_runner(i, slot, &tasks, &shutdown));
        }
        self.update_channel_gauges(&slots);
        tasks.spawn(poller::run(shared.clone(), shutdown.clone()));

        let refresh_every = |s: &CollectorSettings| {
            let mut t = tokio::time::interval(s.refresh_interval.max(Duration::from_secs(1)));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t.reset();
            t
        };
        let mut refresh = refresh_every(&shared.settings());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_presence_refresh = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = refresh.tick() => {
                    self.refresh_presence().await;
                    self.rediscover(&mut slots, &mut clocks, &tasks, &shutdown).await;
                }
                r = reloads.changed() => {
                    if r.is_err() {
                        continue;
                    }
                    // A config reload: new filters apply now, not at the next refresh.
                    let s = reloads.borrow_and_update().clone();
                    *lock(&self.filter) = QueueFilter::new(&s.include, &s.exclude, &s.divisions);
                    refresh = refresh_every(&s);
                    self.rediscover(&mut slots, &mut clocks, &tasks, &shutdown).await;
                }
                _ = shared.presence_refresh.notified() => {
                    // An unknown presence id: definitions changed. Refresh at most once a minute.
                    if last_presence_refresh.elapsed() >= Duration::from_secs(60) {
                        last_presence_refresh = tokio::time::Instant::now();
                        self.refresh_presence().await;
                    }
                }
                _ = tick.tick() => {
                    let now = now_ms();
                    let oldest = clocks.iter().zip(&slots).filter(|(_, s)| !s.queues.is_empty())
                        .map(|(c, _)| c.last_frame_ms()).min();
                    if let Some(last) = oldest {
                        let age = if last > 0 { (now - last).max(0) as f64 / 1000.0 } else { 0.0 };
                        shared.metrics.notification_heartbeat_age_seconds.set(age);
                    }
                    shared.metrics.up.set(i64::from(shared.readiness.ready()));
                }
            }
        }
        tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
        Ok(())
    }

    /// Re-list the queues and move channels to the new list: existing channels keep their sockets and only
    /// change subscriptions; new channels are opened when the list outgrows them.
    async fn rediscover(
        &self,
        slots: &mut Vec<Slot>,
        clocks: &mut Vec<Arc<ChannelClock>>,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: &CancellationToken,
    ) {
        match self.discover().await {
            Ok(queues) => {
                if let Err(e) = self.assign(&queues, slots) {
                    tracing::error!(err = %e, "queue list change not applied");
                    return;
                }
                self.apply_directory(queues);
                while clocks.len() < slots.len() {
                    let i = clocks.len();
                    clocks.push(self.spawn_runner(i, &slots[i], tasks, shutdown));
                }
                self.update_channel_gauges(slots);
            }
            Err(e) => tracing::warn!(err = %e, "queue re-discovery failed; keeping the current list"),
        }
    }

    fn spawn_runner(
        &self,
        index: usize,
        slot: &Slot,
        tasks: &tokio_util::task::TaskTracker,
        shutdown: &CancellationToken,
    ) -> Arc<ChannelClock> {
        let clock = ChannelClock::new();
        let runner = channel::ChannelRunner {
            index,
            shared: self.shared.clone(),
            queues: slot.tx.subscribe(),
            clock: clock.clone(),
        };
        tasks.spawn(runner.run(shutdown.clone()));
        clock
    }

    async fn discover(&self) -> Result<Vec<QueueMeta>, Error> {
        let all = self.shared.reader.api().list_queues().await?;
        let total = all.len();
        let filter = lock(&self.filter).clone();
        let selected = directory::select(all, &filter, self.shared.settings().shard);
        tracing::info!(listed = total, exported = selected.len(), "queues discovered");
        Ok(selected)
    }

    async fn refresh_presence(&self) {
        match self.shared.reader.api().presence_definitions().await {
            Ok(defs) => {
                let defs = defs
                    .into_iter()
                    .map(|d| PresenceDef {
                        name: d.display_name(),
                        system_presence: d.system_presence_normalized(),
                        id: d.id,
                    })
                    .collect();
                self.shared.store.set_presence_definitions(defs);
            }
            Err(e) => tracing::warn!(err = %e, "could not load presence definitions; presence labels may read unknown"),
        }
    }

    fn apply_directory(&self, queues: Vec<QueueMeta>) {
        let ids: HashSet<String> = queues.iter().map(|q| q.id.clone()).collect();
        let change = self.shared.store.set_queues(queues);
        {
            let mut u = lock(&self.shared.unseeded);
            for id in &change.added {
                u.insert(id.clone());
            }
        }
        let removed: HashSet<String> = change.removed.iter().cloned().collect();
        self.shared.forget(&removed);
        if !change.added.is_empty() || !change.removed.is_empty() || !change.renamed.is_empty() {
            tracing::info!(
                added = change.added.len(),
                removed = change.removed.len(),
                renamed = change.renamed.len(),
                total = ids.len(),
                "queue directory updated"
            );
        }
        self.shared.readiness.set_seeded(lock(&self.shared.unseeded).is_empty());
    }

    /// Keep queues on the channel they are on; put new ones where there is room; open channels as needed.
    fn assign(&self, queues: &[QueueMeta], slots: &mut Vec<Slot>) -> Result<(), CollectorError> {
        let settings = self.shared.settings();
        let per = settings.topics_per_channel.clamp(1, 1000);
        let max = settings.max_channels.clamp(1, 20);
        let needed = queues.len().div_ceil(per);
        if needed > max {
            return Err(CollectorError::TooManyChannels { queues: queues.len(), needed, max });
        }
        let wanted: HashSet<&str> = queues.iter().map(|q| q.id.as_str()).collect();
        let mut placed: HashSet<String> = HashSet::new();
        let mut new_lists: Vec<Vec<String>> = slots
            .iter()
            .map(|s| {
                s.queues
                    .iter()
                    .filter(|q| wanted.contains(q.as_str()))
                    .inspect(|q| {
                        placed.insert((*q).clone());
                    })
                    .cloned()
                    .collect()
            })
            .collect();
        for q in queues {
            if placed.contains(&q.id) {
                continue;
            }
            match new_lists.iter_mut().find(|l| l.len() < per) {
                Some(l) => l.push(q.id.clone()),
                None => {
                    if new_lists.len() >= max {
                        return Err(CollectorError::TooManyChannels { queues: queues.len(), needed: max + 1, max });
                    }
                    new_lists.push(vec![q.id.clone()]);
                }
            }
        }
        for (i, list) in new_lists.into_iter().enumerate() {
            match slots.get_mut(i) {
                Some(slot) => {
                    if slot.queues != list {
                        slot.queues = list.clone();
                        let _ = slot.tx.send(list);
                    }
                }
                None => {
                    let (tx, _rx) = watch::channel(list.clone());
                    slots.push(Slot { queues: list, tx });
                }
            }
        }
        Ok(())
    }

    fn update_channel_gauges(&self, slots: &[Slot]) {
        let used = slots.iter().filter(|s| !s.queues.is_empty()).count();
        let topics: usize = slots.iter().map(|s| s.queues.len()).sum();
        self.shared.metrics.notification_channels.set(used as i64);
        self.shared.metrics.notification_topics.set(topics as i64);
    }
}

/// Read every queue once at `Priority::Reconcile`: used by `check` to prove the observations query works.
pub async fn read_once(reader: &Reader, ids: &[String]) -> Result<ReadResult, Error> {
    reader.read(ids, Priority::Reconcile).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesys::auth::{Credential, TokenSource};
    use crate::genesys::budget::RateBudget;
    use crate::model::{GroupUpdate, ObsMetric, Observation, QueueUpdate};
    use crate::state::{Format, StoreConfig};

    fn shared(ids: &[&str]) -> Arc<Shared> {
        let metrics = SelfMetrics::new();
        let http = crate::genesys::client::http_client(Duration::from_secs(1));
        let tokens = TokenSource::new(http.clone(), "http://127.0.0.1:9", "id".into(), Credential::new("x"), |_| {});
        let api = ApiClient::new(http, "http://127.0.0.1:9", tokens, Arc::new(RateBudget::new(1.0)), metrics.clone());
        let c = Collector::new(
            api,
            Store::new(StoreConfig::default()),
            metrics,
            Arc::new(Readiness::default()),
            CollectorSettings::default(),
        );
        let queues = ids
            .iter()
            .map(|id| QueueMeta {
                id: (*id).into(),
                name: format!("Q {id}"),
                division_id: "d".into(),
                division: "Home".into(),
            })
            .collect();
        c.apply_directory(queues);
        c.shared().clone()
    }

    fn waiting(queue: &str, source: Source, n: f64) -> Decoded {
        Decoded {
            update: QueueUpdate {
                queue_id: queue.into(),
                source,
                event_ms: Some(now_ms()),
                complete: source != Source::Stream,
                groups: vec![GroupUpdate {
                    media_type: Some("voice".into()),
                    observations: vec![Observation { metric: ObsMetric::Waiting, qualifier: None, value: Some(n) }],
                    interval: None,
                    aggregates: vec![],
                }],
            },
            unknown_metrics: vec![],
            bad_metrics: vec![],
        }
    }

    fn exported_waiting(s: &Shared, queue: &str) -> Option<String> {
        let mut out = Vec::new();
        s.store.write_text(Format::Prometheus, now_ms(), &mut out);
        let text = String::from_utf8(out).unwrap();
        let needle = format!("queue_id=\"{queue}\"");
        text.lines()
            .find(|l| l.starts_with("genesys_queue_waiting{") && l.contains(&needle))
            .and_then(|l| l.rsplit(' ').next().map(str::to_owned))
    }

    #[test]
    fn a_poll_read_leaves_queues_the_stream_got_to_after_it_was_asked() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let s = shared(&["a", "b", "c"]);
        s.to_poll(&ids, "test");
        let asked = Instant::now();
        // Meanwhile: a topic message for a; b re-seeded and back on the stream.
        s.apply_decoded(waiting("a", Source::Stream, 2.0), None);
        s.apply_decoded(waiting("b", Source::Poll, 3.0), None);
        s.healthy(&ids[1..2], &ChannelClock::new());
        // The read, answered before all that, lands now.
        let read = ReadResult {
            observations: ids.iter().map(|id| waiting(id, Source::Poll, 0.0)).collect(),
            aggregates: vec![],
        };
        assert_eq!(s.apply_poll(read, asked), vec!["c".to_owned()]);
        assert_eq!(exported_waiting(&s, "a").as_deref(), Some("2"), "the newer message stands");
        assert_eq!(exported_waiting(&s, "b").as_deref(), Some("3"), "the newer re-seed stands");
        assert_eq!(exported_waiting(&s, "c").as_deref(), Some("0"));
        let source = |q: &str| s.store.queue_freshness(q, now_ms()).map(|(f, _)| f.source);
        assert_eq!(source("b"), Some(Source::Stream), "the stream keeps the queue it took back");
        assert_eq!(source("c"), Some(Source::Poll));
    }
}
