//! The other 2xx bodies: queue listing pages (then the directory filter), presence definitions (then their labels),
//! channel creation, channel listing, subscription answers. The first byte picks the endpoint.
#![no_main]
use genesys_cloud_exporter::collector::directory::{select, QueueFilter};
use genesys_cloud_exporter::collector::shard::Shard;
use genesys_cloud_exporter::genesys::client::read_answer;
use genesys_cloud_exporter::genesys::models::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 5 {
        0 => {
            if let Ok(Some(l)) = read_answer::<QueueEntityListing>("routing_queues", 200, false, body, None) {
                let filter = QueueFilter::new(&["S*".into(), "q?".into()], &["*x*".into()], &["Home".into()]);
                drop(select(l.entities.clone(), &filter, Shard::new(0, 2)));
                drop(select(l.entities, &QueueFilter::default(), Shard::new(0, 1)));
            }
        }
        1 => {
            if let Ok(Some(l)) =
                read_answer::<PresenceDefinitionListing>("presence_definitions", 200, false, body, None)
            {
                for d in l.entities {
                    drop((d.display_name(), d.system_presence_normalized()));
                }
            }
        }
        2 => {
            if let Ok(Some(c)) = read_answer::<Channel>("notifications_channels", 200, false, body, None) {
                let _ = c.expires.as_deref().and_then(parse_time_ms);
            }
        }
        3 => drop(read_answer::<ChannelEntityListing>("notifications_channels", 200, false, body, None)),
        _ => {
            if let Ok(Some(l)) =
                read_answer::<ChannelTopicEntityListing>("notifications_subscriptions", 200, false, body, None)
            {
                let _ = l.entities.iter().filter(|t| t.is_rejected()).count();
            }
        }
    }
});
