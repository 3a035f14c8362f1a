//! A handle on one accepted TCP connection for the handlers of its requests.
//!
//! Hyper owns the socket once it serves the connection, so a handler cannot reach it. [`Controlled`] wraps the
//! socket below hyper (and below TLS) and shares a [`ConnControl`] with the requests (as an extension): a stream
//! handler uses it to shrink the socket's send buffer, so that a client that stops reading blocks our writes after
//! kilobytes instead of the megabytes kernel autotuning allows (and its bounded queue overflows), and to end the
//! connection when even the final "you are dropped" frame cannot be written.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// What request handlers may do to their connection.
#[derive(Debug, Default)]
pub struct ConnControl {
    /// Send buffer size to apply at the next write (0: none pending).
    send_buffer: AtomicUsize,
    kill: CancellationToken,
}

impl ConnControl {
    /// Ask for `SO_SNDBUF = bytes` (applied before the next write; it also turns off the kernel's autotuning).
    pub fn set_send_buffer(&self, bytes: usize) {
        self.send_buffer.store(bytes.max(1), Ordering::Release);
    }

    /// End the connection now, whatever hyper is waiting for.
    pub fn kill(&self) {
        self.kill.cancel();
    }

    /// Resolves once [`ConnControl::kill`] was called.
    pub async fn killed(&self) {
        self.kill.cancelled().await
    }
}

/// An accepted socket with its [`ConnControl`].
#[derive(Debug)]
pub struct Controlled {
    io: TcpStream,
    ctl: Arc<ConnControl>,
}

impl Controlled {
    pub fn new(io: TcpStream) -> (Self, Arc<ConnControl>) {
        let ctl = Arc::new(ConnControl::default());
        (Controlled { io, ctl: ctl.clone() }, ctl)
    }

    fn apply(&self) {
        let n = self.ctl.send_buffer.swap(0, Ordering::AcqRel);
        if n > 0 {
            if let Err(e) = socket2::SockRef::from(&self.io).set_send_buffer_size(n) {
                tracing::debug!(err = %e, "setting a stream client's send buffer failed");
            }
        }
    }
}

impl AsyncRead for Controlled {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Controlled {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.apply();
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.apply();
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
