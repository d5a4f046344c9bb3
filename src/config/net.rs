//! Networks for `[maintenance] bypass` and a site's `bypass`: `192.168.1.0/24`,
//! `fd00::/8`, or a single address (`::1`, `10.0.0.5`). IPv4 is one thing however it is
//! written: an IPv4 peer reaching a dual-stack listener (`::ffff:a.b.c.d`) counts as
//! its IPv4 address, and an entry written IPv4-mapped (`::ffff:192.168.1.0/120`) is
//! read as the IPv4 network it names (`192.168.1.0/24`).

use std::fmt;
use std::net::IpAddr;

/// One network: an address and a prefix length, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `ADDR/PREFIX` or `ADDR`; host bits set under the prefix are an error (a
    /// typo more often than not: `192.168.1.1/24` is written `192.168.1.0/24`). The
    /// prefix is plain decimal digits: `/+8` or `/08` is refused, not guessed at.
    pub fn parse(s: &str) -> Result<Net, String> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an address or network (192.168.1.0/24, ::1)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match decimal(p) {
                Some(n) if n <= max => n,
                _ => {
                    return Err(format!(
                        "{s:?}: the prefix length must be a number from 0 to {max}, without a sign or leading zeros"
                    ))
                }
            },
        };
        let (addr, prefix) = match addr {
            // `::ffff:a.b.c.d/N` with N >= 96 is exactly the IPv4 network /N-96. A
            // shorter prefix cuts into the ffff, so its host bits are set (refused below).
            IpAddr::V6(v) if prefix >= 96 => match v.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let net = Net { addr, prefix };
        if net.masked(addr) != addr {
            return Err(format!(
                "{s:?} has host bits set: write the network ({}/{prefix})",
                net.masked(addr)
            ));
        }
        Ok(net)
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v) => {
                let bits = u32::from(v);
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(v) => {
                let bits = u128::from(v);
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// Whether `peer` is in this network.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v) => v.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        peer.is_ipv4() == self.addr.is_ipv4() && self.masked(peer) == self.addr
    }
}

/// A prefix length as written: 1 to 3 ASCII digits, no leading zero but for `0` itself.
fn decimal(p: &str) -> Option<u8> {
    let canonical = !p.is_empty()
        && p.len() <= 3
        && p.bytes().all(|b| b.is_ascii_digit())
        && (p == "0" || !p.starts_with('0'));
    canonical.then(|| p.parse().ok()).flatten()
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_and_addresses() {
        let lan = Net::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains(ip("192.168.1.77")));
        assert!(
            lan.contains(ip("::ffff:192.168.1.77")),
            "mapped IPv4 counts"
        );
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(!lan.contains(ip("::1")));
        let one = Net::parse("::1").unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Net::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Net::parse("127.0.0.2").unwrap().contains(ip("127.0.0.2")));
        assert!(!Net::parse("127.0.0.2").unwrap().contains(ip("127.0.0.1")));
        for bad in [
            "192.168.1.1/24",
            "10.0.0.0/33",
            "nonsense",
            "::/129",
            "1.2.3.4/x",
            "",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/008",
            "10.0.0.0/-0",
            "10.0.0.0/ 8",
            "10.0.0.0 /8",
            "10.0.0.0/",
            "fd00::/+8",
            "::/0128",
            "::ffff:192.168.1.5/95",
        ] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        assert!(Net::parse("0.0.0.0/0").is_ok() && Net::parse("::/0").is_ok());
        assert!(
            Net::parse(" 10.0.0.0/8 ").is_ok(),
            "space around the entry is fine"
        );
    }

    #[test]
    fn ipv4_mapped_entries_are_ipv4_networks() {
        let one = Net::parse("::ffff:192.168.1.5").unwrap();
        assert_eq!(one, Net::parse("192.168.1.5").unwrap());
        assert_eq!(one.to_string(), "192.168.1.5/32");
        assert!(one.contains(ip("192.168.1.5")));
        assert!(one.contains(ip("::ffff:192.168.1.5")));
        assert!(!one.contains(ip("192.168.1.6")));
        let lan = Net::parse("::ffff:192.168.1.0/120").unwrap();
        assert_eq!(lan, Net::parse("192.168.1.0/24").unwrap());
        assert!(lan.contains(ip("192.168.1.200")) && !lan.contains(ip("192.168.2.1")));
        assert_eq!(
            Net::parse("::ffff:0.0.0.0/96").unwrap(),
            Net::parse("0.0.0.0/0").unwrap()
        );
        assert!(Net::parse("::ffff:192.168.1.5/120")
            .unwrap_err()
            .contains("host bits"));
        // Only the mapped form is IPv4: the old compatible form (::a.b.c.d) is IPv6.
        assert!(!Net::parse("::192.168.1.5")
            .unwrap()
            .contains(ip("192.168.1.5")));
    }
}
