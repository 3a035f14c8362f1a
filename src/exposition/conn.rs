//! A handle on one accepted TCP connection for the handlers of its requests.
//!
//! Hyper owns the socket once it serves the connection, so a handler cannot reach it. [`Controlled`] wraps the
//! socket below hyper (and below TLS) and shares a [`ConnControl`] with the requests (as an extension). A stream
//! handler uses it to shrink the socket's send buffer, so that a client that stops reading blocks our writes after
//! kilobytes instead of the megabytes kernel autotuning allows (and its bounded queue overflows); to end the
//! connection when even the final "you are dropped" frame cannot be written; and to hand the whole connection to
//! the stream clients' own runtime ([`ConnControl::move_to`]), so that its writes never compete with `/metrics`
//! and the collector for the server's worker threads.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What request handlers may do to their connection.
#[derive(Debug, Default)]
pub struct ConnControl {
    /// Send buffer size to apply at the next write (0: none pending).
    send_buffer: AtomicUsize,
    kill: CancellationToken,
    /// The runtime the connection moves to: its task (taken by [`ConnControl::moved`]) and its socket's I/O
    /// registration (taken by [`Controlled`] at its next read or write).
    task_to: Mutex<Option<Handle>>,
    io_to: Mutex<Option<Handle>>,
    io_pending: AtomicBool,
    move_asked: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Serve the rest of this connection on `runtime`: the connection's task moves there, and its socket is
    /// registered with that runtime's I/O driver, so readiness events are handled there too.
    pub fn move_to(&self, runtime: Handle) {
        *lock(&self.io_to) = Some(runtime.clone());
        self.io_pending.store(true, Ordering::Release);
        *lock(&self.task_to) = Some(runtime);
        self.move_asked.notify_one();
    }

    /// Resolves with the runtime once [`ConnControl::move_to`] was called (for the connection's task).
    pub async fn moved(&self) -> Handle {
        loop {
            let asked = self.move_asked.notified();
            if let Some(h) = lock(&self.task_to).take() {
                return h;
            }
            asked.await;
        }
    }
}

/// An accepted socket with its [`ConnControl`].
#[derive(Debug)]
pub struct Controlled {
    /// `None` only if re-registering it failed (then every operation fails).
    io: Option<TcpStream>,
    ctl: Arc<ConnControl>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection's socket could not move runtimes")
}

impl Controlled {
    pub fn new(io: TcpStream) -> (Self, Arc<ConnControl>) {
        let ctl = Arc::new(ConnControl::default());
        (Controlled { io: Some(io), ctl: ctl.clone() }, ctl)
    }

    /// The socket, re-registered first with the runtime asked for by [`ConnControl::move_to`].
    fn io(&mut self) -> io::Result<&mut TcpStream> {
        if self.ctl.io_pending.swap(false, Ordering::AcqRel) {
            if let (Some(to), Some(io)) = (lock(&self.ctl.io_to).take(), self.io.take()) {
                let std = io.into_std()?;
                let _in = to.enter();
                self.io = Some(TcpStream::from_std(std)?);
            }
        }
        self.io.as_mut().ok_or_else(gone)
    }

    fn apply(&mut self) -> io::Result<&mut TcpStream> {
        let n = self.ctl.send_buffer.swap(0, Ordering::AcqRel);
        let io = self.io()?;
        if n > 0 {
            if let Err(e) = socket2::SockRef::from(&*io).set_send_buffer_size(n) {
                tracing::debug!(err = %e, "setting a stream client's send buffer failed");
            }
        }
        Ok(io)
    }
}

macro_rules! io_or_fail {
    ($e:expr) => {
        match $e {
            Ok(io) => Pin::new(io),
            Err(e) => return Poll::Ready(Err(e)),
        }
    };
}

impl AsyncRead for Controlled {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        io_or_fail!(self.io()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Controlled {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        io_or_fail!(self.apply()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        io_or_fail!(self.apply()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_or_fail!(self.io()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_or_fail!(self.io()).poll_shutdown(cx)
    }
}
