//! `POST /api/v2/analytics/queues/observations/query` answers: the body read as a 2xx answer, then decoded.
#![no_main]
use genesys_cloud_exporter::genesys::client::read_answer;
use genesys_cloud_exporter::genesys::decode::decode_observation_query;
use genesys_cloud_exporter::genesys::models::QueueObservationQueryResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(r)) = read_answer::<QueueObservationQueryResponse>("observations_query", 200, false, data, None) {
        for d in decode_observation_query(r, 1_735_689_600_000) {
            drop(format!("{d:?}"));
        }
    }
});
