//! One WebSocket text frame through `decode_frame`: envelope, topic dispatch, every topic body.
#![no_main]
use genesys_cloud_exporter::genesys::decode::decode_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The socket hands text frames over as `str`; bytes that are not UTF-8 never reach the decoder.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match decode_frame(text) {
        Ok(frame) => drop(format!("{frame:?}")),
        Err(e) => drop((e.kind(), e.to_string())),
    }
});
