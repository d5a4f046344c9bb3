//! The unguessable parts of subscription links: tokens of 32 random bytes from the
//! operating system (256 bits), written as 64 lower-case hex digits, and subscriber
//! IDs. Without OS randomness there is no token: the request is refused rather than
//! given a guessable link.

/// Hex digits in a token.
pub const TOKEN_LEN: usize = 64;

/// A fresh token, or why none could be made.
pub fn token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Whether `t` has a token's form (so anything else is refused before any lookup).
pub fn well_formed(t: &str) -> bool {
    t.len() == TOKEN_LEN && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A subscriber ID: 12 of a-z0-9 (it names the subscriber in logs, never in links).
pub fn id() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for an ID: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_hex_and_fresh() {
        let a = token().unwrap();
        let b = token().unwrap();
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!well_formed(&a.to_ascii_uppercase()));
        assert!(!well_formed(&a[1..]));
        assert!(!well_formed(&format!("{}g", &a[1..])));
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
        let i = id().unwrap();
        assert_eq!(i.len(), 12);
        assert!(i
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn comparison_is_exact() {
        use crate::store::same_token;
        let a = token().unwrap();
        assert!(same_token(&a, &a.clone()));
        let mut b = a.clone().into_bytes();
        b[63] = if b[63] == b'0' { b'1' } else { b'0' };
        assert!(!same_token(&a, std::str::from_utf8(&b).unwrap()));
        assert!(!same_token(&a, &a[..63]));
        assert!(!same_token("", &a));
    }
}
