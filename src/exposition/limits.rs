//! What one client may cost the server: connections, request heads, time to send them. Defaults suit a scrape
//! endpoint on an internal network; tests shrink them to prove each limit holds.

use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

/// Server limits (see [`Limits::default`] for the values and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. Past this a new connection is answered 503 (plain HTTP) or closed (TLS) at
    /// once, so a scraper sees a clear error instead of a timeout.
    pub max_connections: usize,
    /// A client that has not sent its complete request head by then is dropped (slowloris).
    pub header_read_timeout: Duration,
    /// Request head size (hyper's read buffer): larger heads get 431.
    pub max_head_bytes: usize,
    /// Header lines per request: more get 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Stream clients hold theirs for long, so their cap comes on top: a full house of them leaves 512 for
            // scrapes.
            max_connections: 512 + super::stream::MAX_STREAM_CLIENTS,
            header_read_timeout: Duration::from_secs(30),
            // A scrape request is a few hundred bytes.
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Over-limit connections being turned away at once; more than this are closed without a word.
pub(crate) const MAX_REJECTING: usize = 64;

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 39\r\n\r\ntoo many connections; try again later\r\n";

/// Answer a connection over [`Limits::max_connections`] with a bare 503 and close it (bounded by a second).
pub(crate) async fn turn_away(mut stream: tokio::net::TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_response_has_a_true_content_length() {
        let text = std::str::from_utf8(super::BUSY).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head:?} / {body:?}");
    }
}
