//! Limits on what a client may send and how long it may take, shared by both HTTP
//! paths (offramp's fast path and Pingora's) and the connection guard. SECURITY.md
//! explains each one.

use std::time::Duration;

/// Time from the first byte of a request head to its end (the empty line).
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept-alive connection with no request for this long is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (request line and header fields) read; larger ones get 431.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// Longest request target (path and query) accepted; longer ones get 414.
pub const MAX_REQUEST_TARGET: usize = 8 * 1024;
/// A write to a client that makes no progress for this long ends the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most client connections open at once, whatever the file-descriptor limit allows.
pub const MAX_CONNECTIONS: usize = 10_000;
