//! The per-thread keep-alive pool of upstream connections. Each worker runs a
//! current-thread runtime, so a connection is only ever used by the runtime whose
//! reactor it is registered with, and no lock is needed.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle upstream connections kept per upstream address and worker thread.
const POOL_MAX_IDLE: usize = 128;

struct Idle {
    stream: TcpStream,
    expires: Instant,
}

thread_local! {
    /// Idle upstream connections of this worker thread, newest last, by address. Each
    /// worker runs a current-thread runtime, so a connection is only ever used by the
    /// runtime whose reactor it is registered with, and no lock is needed.
    static POOL: RefCell<Vec<(SocketAddr, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// An idle connection to `addr` that the upstream has not closed, if any.
pub(super) fn pool_take(addr: SocketAddr, now: Instant) -> Option<TcpStream> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let list = &mut p.iter_mut().find(|(a, _)| *a == addr)?.1;
        while let Some(idle) = list.pop() {
            if idle.expires <= now {
                // Newest last: everything below is older still.
                list.clear();
                return None;
            }
            // Readable while idle means closed or garbage: either way not reusable. No
            // syscall unless the reactor saw the socket become readable.
            let mut b = [0u8; 1];
            if matches!(idle.stream.try_read(&mut b), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            {
                return Some(idle.stream);
            }
        }
        None
    })
}

pub(super) fn pool_put(addr: SocketAddr, stream: TcpStream, idle: Duration, now: Instant) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = match p.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                p.push((addr, Vec::new()));
                p.len() - 1
            }
        };
        let list = &mut p[i].1;
        if list.len() >= POOL_MAX_IDLE {
            list.remove(0);
        }
        list.push(Idle {
            stream,
            expires: now + idle,
        });
    })
}

/// Drops this thread's idle upstream connections whose idle time is over (each worker
/// runs it periodically, so upstreams that left the config do not keep sockets open).
pub fn pool_sweep() {
    POOL.with(|p| {
        let now = Instant::now();
        let mut p = p.borrow_mut();
        for (_, list) in p.iter_mut() {
            list.retain(|i| i.expires > now);
        }
        p.retain(|(_, l)| !l.is_empty());
    })
}

/// Drops every idle upstream connection of this thread (before its runtime goes away).
pub fn pool_clear() {
    POOL.with(|p| p.borrow_mut().clear());
}
