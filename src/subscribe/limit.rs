//! The per-client limit of subscription requests: 5 a minute for each client address
//! (an IPv6 client by its /64, what one host or home network gets), over every
//! `/subscribe*` and `/unsubscribe` request. A sliding window of the last requests let
//! through; refused requests do not count, so a client that waits gets in again. The
//! map is pruned as it goes and never holds more than `MAX_CLIENTS` addresses: past
//! that (a flood from many addresses), new clients share one bucket of
//! `OVERFLOW_PER_WINDOW` a minute until entries age out, so a flood cannot lock
//! everyone else out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests let through per client and window.
pub const PER_WINDOW: usize = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Clients remembered at most.
const MAX_CLIENTS: usize = 65_536;
/// Requests a minute that clients new while the map is full share.
const OVERFLOW_PER_WINDOW: usize = 100;
/// The map is swept of idle clients once it holds this many more than after the last sweep.
const SWEEP_EVERY: usize = 1_024;

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    /// The first 64 bits.
    V6(u64),
    Unknown,
    /// Every new client while the map is full.
    Overflow,
}

fn client(ip: Option<IpAddr>) -> Client {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(a)) => Client::V4(u32::from(a)),
        Some(IpAddr::V6(a)) => Client::V6((u128::from(a) >> 64) as u64),
        None => Client::Unknown,
    }
}

/// The limiter (one per process).
#[derive(Debug, Default)]
pub struct Limiter {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<Client, VecDeque<Instant>>,
    /// Size after the last sweep.
    swept_at: usize,
    last_sweep: Option<Instant>,
}

impl Limiter {
    /// Counts a request of `ip` at `now`: `Err` with how long until the client may ask
    /// again when it already made `PER_WINDOW` in the last `WINDOW`.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = client(ip);
        let fresh = |t: &Instant| now.saturating_duration_since(*t) < WINDOW;
        let full = inner.clients.len() >= MAX_CLIENTS && !inner.clients.contains_key(&key);
        // When full, a sweep at most once a second: a flood costs no sweep per request.
        let swept_lately = inner
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if inner.clients.len() >= inner.swept_at + SWEEP_EVERY || (full && !swept_lately) {
            inner
                .clients
                .retain(|_, times| times.back().is_some_and(fresh));
            inner.swept_at = inner.clients.len();
            inner.last_sweep = Some(now);
        }
        let (key, limit) =
            if inner.clients.len() >= MAX_CLIENTS && !inner.clients.contains_key(&key) {
                (Client::Overflow, OVERFLOW_PER_WINDOW)
            } else {
                (key, PER_WINDOW)
            };
        let times = inner.clients.entry(key).or_default();
        while times.front().is_some_and(|t| !fresh(t)) {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.saturating_duration_since(oldest));
            return Err(wait.max(Duration::from_secs(1)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_a_minute_per_client() {
        let l = Limiter::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..5 {
            assert!(l.check(Some(a), t + Duration::from_secs(i)).is_ok());
        }
        let wait = l.check(Some(a), t + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Refusals do not count; another client is not affected.
        assert!(l.check(Some(a), t + Duration::from_secs(20)).is_err());
        assert!(l.check(Some(b), t + Duration::from_secs(20)).is_ok());
        // The first request ages out after a minute.
        assert!(l.check(Some(a), t + Duration::from_secs(60)).is_ok());
        assert!(l.check(Some(a), t + Duration::from_secs(60)).is_err());
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let l = Limiter::default();
        let t = Instant::now();
        for i in 0..5u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert!(l.check(Some(ip), t).is_ok());
        }
        assert!(l
            .check(Some("2001:db8:1:2:ffff::1".parse().unwrap()), t)
            .is_err());
        assert!(l.check(Some("2001:db8:1:3::1".parse().unwrap()), t).is_ok());
        for _ in 0..5 {
            assert!(l.check(Some("192.0.2.9".parse().unwrap()), t).is_ok());
        }
        assert!(l
            .check(Some("::ffff:192.0.2.9".parse().unwrap()), t)
            .is_err());
    }

    #[test]
    fn the_map_is_pruned_and_bounded() {
        let l = Limiter::default();
        let t = Instant::now();
        for i in 0..(MAX_CLIENTS as u32) {
            assert!(l.check(Some(IpAddr::V4(i.into())), t).is_ok());
        }
        // Full of fresh clients: new ones share one bucket, never locked out at once...
        for i in 0..OVERFLOW_PER_WINDOW as u32 {
            let ip = IpAddr::V4((0xCB00_7100u32 + i).into());
            assert!(l.check(Some(ip), t).is_ok(), "new client {i} while full");
        }
        // ... until the bucket is spent: then they wait.
        assert!(l.check(Some("203.0.113.1".parse().unwrap()), t).is_err());
        // The map itself does not grow past its bound.
        assert_eq!(l.inner.lock().unwrap().clients.len(), MAX_CLIENTS + 1);
        // A minute later, the old ones are swept away.
        assert!(l
            .check(Some("203.0.113.1".parse().unwrap()), t + WINDOW)
            .is_ok());
        let n = l.inner.lock().unwrap().clients.len();
        assert_eq!(n, 1);
    }
}
