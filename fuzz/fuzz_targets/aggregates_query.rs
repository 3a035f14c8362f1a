//! `POST /api/v2/analytics/conversations/aggregates/query` answers: the body read as a 2xx answer, then decoded.
#![no_main]
use genesys_cloud_exporter::genesys::client::read_answer;
use genesys_cloud_exporter::genesys::decode::decode_aggregates;
use genesys_cloud_exporter::genesys::models::ConversationAggregateQueryResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(r)) = read_answer::<ConversationAggregateQueryResponse>("aggregates_query", 200, false, data, None) {
        for u in decode_aggregates(r) {
            drop(format!("{u:?}"));
        }
    }
});
