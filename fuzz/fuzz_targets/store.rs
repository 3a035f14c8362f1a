//! The data path behind the parsers: frames and query responses (one per line) decoded, applied to the store,
//! rendered in both exposition formats. Finds what a parser lets through but the store cannot take (NaN, huge
//! counts, odd intervals).
#![no_main]
use genesys_cloud_exporter::genesys::client::read_answer;
use genesys_cloud_exporter::genesys::decode::{decode_aggregates, decode_frame, decode_observation_query, Frame};
use genesys_cloud_exporter::genesys::models::{
    ConversationAggregateQueryResponse, PresenceDefinitionListing, QueueObservationQueryResponse,
};
use genesys_cloud_exporter::model::QueueMeta;
use genesys_cloud_exporter::state::{Format, PresenceDef, Store, StoreConfig};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

const NOW: i64 = 1_735_689_600_000; // 2025-01-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let store = Store::new(StoreConfig::default());
    let mut updates = Vec::new();
    let mut presence = Vec::new();
    for line in text.split('\n') {
        if let Ok(Frame::Queue(d)) = decode_frame(line) {
            updates.push(d.update);
        } else if let Ok(Some(r)) =
            read_answer::<QueueObservationQueryResponse>("observations_query", 200, false, line.as_bytes(), None)
        {
            updates.extend(decode_observation_query(r, NOW).into_iter().map(|d| d.update));
        } else if let Ok(Some(r)) =
            read_answer::<ConversationAggregateQueryResponse>("aggregates_query", 200, false, line.as_bytes(), None)
        {
            updates.extend(decode_aggregates(r));
        } else if let Ok(Some(l)) =
            read_answer::<PresenceDefinitionListing>("presence_definitions", 200, false, line.as_bytes(), None)
        {
            presence.extend(l.entities.into_iter().map(|d| PresenceDef {
                name: d.display_name(),
                system_presence: d.system_presence_normalized(),
                id: d.id,
            }));
        }
    }
    let ids: BTreeSet<String> = updates.iter().map(|u| u.queue_id.clone()).collect();
    let metas = ids
        .into_iter()
        .map(|id| QueueMeta { name: id.clone(), id, division_id: "d".into(), division: "Home".into() })
        .collect();
    store.set_queues_at(metas, NOW);
    store.set_presence_definitions(presence);
    for (i, u) in updates.into_iter().enumerate() {
        store.apply_at(u, NOW + i as i64 * 1000);
    }
    let mut out = Vec::new();
    store.write_text(Format::Prometheus, NOW + 60_000, &mut out);
    store.write_text(Format::OpenMetrics, NOW + 60_000, &mut out);
    let _ = store.summary(NOW + 60_000);
    // The JSON API's documents, as /api/v1/snapshot serves them.
    let (_, docs) = store.live().docs();
    for d in docs {
        drop(d.with_freshness(NOW + 60_000, 180_000).to_string());
    }
});
