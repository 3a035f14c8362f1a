//! Any status with any body: the first two bytes are the status, the third says HEAD; error bodies (`ErrorBody`)
//! become typed errors whose kind, status and message are read.
#![no_main]
use genesys_cloud_exporter::genesys::client::read_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, head, body @ ..] = data else { return };
    let status = u16::from_be_bytes([*a, *b]);
    match read_answer::<serde_json::Value>("observations_query", status, head & 1 == 1, body, Some("ctx".into())) {
        Ok(v) => drop(v),
        Err(e) => drop((e.kind(), e.status(), e.is_transient(), e.to_string())),
    }
});
