//! The `Authorization` header a client sends, checked against a basic-auth web config (cost-4 bcrypt hash, so the
//! fuzzer is not bound by bcrypt's deliberate slowness).
#![no_main]
use genesys_cloud_exporter::exposition::webconfig::{parse, WebConfig};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;

fn config() -> &'static WebConfig {
    static CONFIG: OnceLock<WebConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
        parse(&format!("basic_auth_users:\n  prom: '{hash}'\n"), Path::new("/nonexistent-fuzz-dir/web.yml"))
            .expect("static config")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(auth) = &config().auth else { return };
    // Header values reach the server as bytes; hyper exposes them as str only when they are visible ASCII.
    let header = std::str::from_utf8(data).ok();
    let _ = auth.allows(header);
});
