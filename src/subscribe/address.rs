//! Which e-mail addresses a visitor may subscribe: a sane subset of RFC 5321's
//! mailboxes, what every mail server delivers to. `local@domain` with a dot-atom local
//! part (no quoted strings, no comments) of at most 64 bytes, a host name of at least
//! two labels as the domain (no address literals), at most 254 bytes in all, ASCII
//! only. The address is kept lower-cased: one subscriber per mailbox however it is
//! typed.

/// The longest address accepted (RFC 5321's path limit less the angle brackets).
pub const MAX_ADDRESS: usize = 254;
/// The longest local part (RFC 5321 section 4.5.3.1.1).
pub const MAX_LOCAL: usize = 64;

/// `text` as a subscriber's address (trimmed, lower-cased), or why it is refused, in
/// words a visitor understands.
pub fn parse(text: &str) -> Result<String, &'static str> {
    let a = text.trim();
    if a.is_empty() {
        return Err("Enter an e-mail address.");
    }
    if a.len() > MAX_ADDRESS {
        return Err("That address is too long.");
    }
    if !a.is_ascii() || a.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("An address has no spaces, control characters or letters outside ASCII.");
    }
    let mut parts = a.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("An address has exactly one @.");
    };
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err("The part before the @ must be 1 to 64 characters.");
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    if local
        .split('.')
        .any(|w| w.is_empty() || !w.bytes().all(atext))
    {
        return Err("The part before the @ has a character an address cannot have there.");
    }
    if domain.starts_with('[') {
        return Err("Give a domain name after the @, not an IP address.");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("The part after the @ is not a domain name (like example.com).");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("Give a domain name after the @, not an IP address.");
    }
    Ok(a.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ordinary_addresses_pass_lower_cased() {
        assert_eq!(parse(" Ann@Example.COM ").unwrap(), "ann@example.com");
        assert_eq!(
            parse("first.last+tag@mail.example.co.uk").unwrap(),
            "first.last+tag@mail.example.co.uk"
        );
        assert_eq!(parse("x_y-z@a-b.example").unwrap(), "x_y-z@a-b.example");
        let local = "a".repeat(64);
        let domain = format!("{}.example", "b".repeat(63));
        assert!(parse(&format!("{local}@{domain}")).is_ok());
    }

    #[test]
    fn the_rest_is_refused() {
        for bad in [
            "",
            "   ",
            "plain",
            "a@b@example.com",
            "@example.com",
            "ann@",
            "ann@localhost",
            "ann@[127.0.0.1]",
            "ann@127.0.0.1",
            "ann@exa mple.com",
            "an n@example.com",
            "ann@example..com",
            ".ann@example.com",
            "ann.@example.com",
            "a..b@example.com",
            "\"ann\"@example.com",
            "ann@-example.com",
            "ann@example-.com",
            "ann@exam_ple.com",
            "ann\r\n@example.com",
            "ann\u{0}@example.com",
            "änn@example.com",
            "ann@exämple.com",
            "<ann@example.com>",
            "ann@example.com,bob@example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(parse(&format!("a@{}.example", "b".repeat(64))).is_err());
        let long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        assert!(long.len() > 254);
        assert!(parse(&long).is_err());
    }
}
