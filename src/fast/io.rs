//! Socket plumbing of the fast path: one re-armed timer per connection for all its
//! deadlines, writes with a no-progress limit, buffer helpers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant as TInstant, Sleep};

/// Read buffers grow in steps of this size.
pub(super) const IO_CHUNK: usize = 16 * 1024;

/// One timer per client connection for every deadline it waits on (the idle limit, a
/// request head's, the upstream's answer): re-armed only when a wait needs an earlier
/// deadline than the one set, or when it fires before the deadline waited for (at most
/// once per idle period of a busy connection). A tokio timer created and dropped per wait
/// cost more than the rest of a request's bookkeeping.
pub(super) struct Timer(Pin<Box<Sleep>>);

impl Timer {
    pub(super) fn new() -> Timer {
        Timer(Box::pin(tokio::time::sleep_until(
            TInstant::now() + Duration::from_secs(24 * 3600),
        )))
    }

    /// Runs `fut` to completion (`Some`) unless `deadline` passes first (`None`).
    pub(super) async fn within<F: Future>(
        &mut self,
        deadline: TInstant,
        fut: F,
    ) -> Option<F::Output> {
        if self.0.deadline() > deadline {
            self.0.as_mut().reset(deadline);
        }
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            while self.0.as_mut().poll(cx).is_ready() {
                if TInstant::now() >= deadline {
                    return Poll::Ready(None);
                }
                self.0.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }
}

/// Whether the server is draining, without waiting. `drain` completes once, when it
/// is; it is not polled again after that (the connection closes).
pub(super) fn draining<F: Future>(drain: Pin<&mut F>) -> bool {
    let mut drain = drain;
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    drain.as_mut().poll(&mut cx).is_ready()
}

/// Writes to the client; a client that takes no bytes for `crate::limits::WRITE_TIMEOUT` is
/// dropped. (The timer is only armed when the write does not complete at once.)
pub(super) async fn write_client(tcp: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    write_timeout(tcp, data, crate::limits::WRITE_TIMEOUT).await
}

/// Writes all of `data`; fails when a write makes no progress for `limit`.
pub(super) async fn write_timeout(
    tcp: &mut TcpStream,
    data: &[u8],
    limit: Duration,
) -> io::Result<()> {
    let mut data = data;
    while !data.is_empty() {
        match tcp.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                data = &data[n..];
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tokio::time::timeout(limit, tcp.write(data)).await {
            Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    Ok(())
}

pub(super) fn consume(buf: &mut Vec<u8>, n: usize) {
    if n >= buf.len() {
        buf.clear();
    } else {
        buf.drain(..n);
    }
}

/// Makes room for another read.
pub(super) fn reserve(b: &mut Vec<u8>) {
    if b.capacity() - b.len() < 4096 {
        b.reserve(IO_CHUNK);
    }
}
