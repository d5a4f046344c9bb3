//! The one wildcard pattern `import` takes: `*`, `?` and `[…]` in a file name (Caddy
//! allows them in the last path element only; `expand` checks that).

/// Shell-style wildcard match of one file name: `*`, `?`, `[abc]`, `[a-z]`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let set = &p[1..end];
                let mut hit = false;
                let mut k = 0;
                while k < set.len() {
                    if k + 2 < set.len() && set[k + 1] == '-' {
                        hit |= set[k] <= c && c <= set[k + 2];
                        k += 3;
                    } else {
                        hit |= set[k] == c;
                        k += 1;
                    }
                }
                hit && go(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.caddy", "a.caddy"));
        assert!(!glob_match("*.caddy", "a.caddyx"));
        assert!(glob_match("site?.conf", "site1.conf"));
        assert!(glob_match("[ab]*", "b1"));
        assert!(glob_match("[a-c]", "b"));
        assert!(!glob_match("[a-c]", "d"));
    }
}
