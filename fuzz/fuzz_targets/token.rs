//! The login service's answer (`POST /oauth/token`): the first two bytes are the status, the rest the body; a token
//! response becomes the token the client would use.
#![no_main]
use genesys_cloud_exporter::genesys::auth::{read_token_answer, Token};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let [a, b, body @ ..] = data else { return };
    match read_token_answer(u16::from_be_bytes([*a, *b]), body) {
        Ok(resp) => {
            let t = Token::issued(&resp, Instant::now(), 1);
            drop((t.refresh_at(), format!("{t:?}")));
        }
        Err(e) => drop((e.kind(), e.to_string())),
    }
});
