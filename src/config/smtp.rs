//! `[smtp]` (the mail server subscribers' mails go through), CONTRACT section 11.
//! `password_file` is read here with `api::read_secret` and never appears in an error
//! or a `Debug` dump. Mailing is `subscribe`'s.

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use toml::de::DeTable;

use super::api::{read_secret, Secret};
use super::reader::Ctx;
use super::resolve_path;
use super::url::valid_host;

const SMTP_KEYS: &[&str] = &["server", "port", "tls", "username", "password_file", "from"];

/// `[smtp]`: the server subscribers' mails are sent through.
#[derive(Debug, Clone, PartialEq)]
pub struct Smtp {
    /// A host name or IP address (an IPv6 address without brackets).
    pub server: String,
    /// Default 587 (starttls), 465 (tls) or 25 (none).
    pub port: u16,
    pub tls: SmtpTls,
    /// `username` and `password` are both set or both not.
    pub username: Option<String>,
    /// The content of `password_file`.
    pub password: Option<Secret>,
    /// `local@domain` or `Name <local@domain>`, as written.
    pub from: String,
}

/// `[smtp] tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (the default; port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (port 25).
    None,
}

impl SmtpTls {
    /// `"starttls"`, `"tls"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
            SmtpTls::None => "none",
        }
    }

    /// The port used when `[smtp] port` is not set.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }

    fn parse(s: &str) -> Option<SmtpTls> {
        [SmtpTls::Starttls, SmtpTls::Tls, SmtpTls::None]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// `[smtp]` (paths relative to `file`); `None` when a required key is missing or bad.
pub(super) fn parse_smtp(
    ctx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    table: Range<usize>,
    file: &Path,
) -> Option<Smtp> {
    let mut server = None;
    let mut port: Option<u16> = None;
    let mut tls = SmtpTls::Starttls;
    let mut username: Option<(Option<String>, Range<usize>)> = None;
    let mut password: Option<(Option<Secret>, Range<usize>)> = None;
    let mut from = None;
    let mut bad = false;
    let mut seen = HashSet::new();
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("smtp.{name}");
        seen.insert(name.to_string());
        match name {
            "server" => match ctx.string(&key, v) {
                Some(s) => match smtp_server(&s) {
                    Some(host) => server = Some(host),
                    None => ctx.err(
                        &v.span(),
                        &key,
                        format!(
                            "{s:?} is not a host name or IP address (the port goes in port = ...)"
                        ),
                    ),
                },
                None => bad = true,
            },
            "port" => match ctx.integer(&key, v) {
                Some(p) => match u16::try_from(p) {
                    Ok(p) if p > 0 => port = Some(p),
                    _ => {
                        bad = true;
                        ctx.err(&v.span(), &key, "must be 1 to 65535");
                    }
                },
                None => bad = true,
            },
            "tls" => match ctx.string(&key, v) {
                Some(s) => match SmtpTls::parse(&s) {
                    Some(t) => tls = t,
                    None => {
                        bad = true;
                        ctx.err(
                            &v.span(),
                            &key,
                            format!("unknown tls {s:?} (expected one of: starttls, tls, none)"),
                        );
                    }
                },
                None => bad = true,
            },
            "username" => {
                let u = ctx.string(&key, v).filter(|u| {
                    let ok = !u.is_empty() && !u.chars().any(char::is_control);
                    if !ok {
                        ctx.err(
                            &v.span(),
                            &key,
                            "must not be empty or hold control characters",
                        );
                    }
                    ok
                });
                username = Some((u, v.span()));
            }
            "password_file" => {
                let p = ctx.string(&key, v).and_then(|p| {
                    read_secret(&resolve_path(file, &p), "password file")
                        .map_err(|e| ctx.err(&v.span(), &key, e))
                        .ok()
                });
                password = Some((p, v.span()));
            }
            "from" => {
                if let Some(f) = ctx.string(&key, v) {
                    match check_from(&f) {
                        Ok(()) => from = Some(f),
                        Err(why) => ctx.err(&v.span(), &key, format!("{f:?} {why}")),
                    }
                }
            }
            _ => ctx.unknown(&key, &k.span(), SMTP_KEYS),
        }
    }
    for (key, message) in [
        (
            "server",
            "missing: [smtp] needs the mail server's host name",
        ),
        (
            "from",
            "missing: [smtp] needs from = \"ADDRESS\" (or \"Name <ADDRESS>\")",
        ),
    ] {
        if !seen.contains(key) {
            ctx.err(&table, &format!("smtp.{key}"), message);
        }
    }
    match (&username, &password) {
        (Some((_, span)), None) => ctx.err(
            span,
            "smtp.username",
            "needs password_file too (set both or neither)",
        ),
        (None, Some((_, span))) => ctx.err(
            span,
            "smtp.password_file",
            "needs username too (set both or neither)",
        ),
        _ => {}
    }
    if bad {
        return None;
    }
    let (username, password) = match (username, password) {
        (Some((Some(u), _)), Some((Some(p), _))) => (Some(u), Some(p)),
        (None, None) => (None, None),
        _ => return None,
    };
    Some(Smtp {
        server: server?,
        port: port.unwrap_or(tls.default_port()),
        tls,
        username,
        password,
        from: from?,
    })
}

/// A host name or IP address as the mail code wants it (an IPv6 one unbracketed).
fn smtp_server(s: &str) -> Option<String> {
    let inner = s.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Ok(ip) = inner.unwrap_or(s).parse::<IpAddr>() {
        return (inner.is_none() || ip.is_ipv6()).then(|| ip.to_string());
    }
    valid_host(s).then(|| s.to_string())
}

/// Why `from` is not `local@domain` or `Name <local@domain>` (reason only).
fn check_from(from: &str) -> Result<(), &'static str> {
    if from.contains(['\r', '\n']) {
        return Err("must not contain line breaks");
    }
    let addr = match from.rfind('<') {
        Some(open) => {
            let Some(addr) = from[open + 1..].strip_suffix('>') else {
                return Err("is not an e-mail address: expected Name <local@domain>");
            };
            let name = &from[..open];
            if name.contains(['<', '>']) || name.chars().any(char::is_control) {
                return Err("has a name with <, > or control characters in it");
            }
            addr
        }
        None => from,
    };
    let Some((local, domain)) = addr.split_once('@') else {
        return Err("is not an e-mail address: expected local@domain");
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(
            "is not an e-mail address: expected local@domain (one @, something on each side)",
        );
    }
    if addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
    {
        return Err("is not an e-mail address: no spaces or control characters in the address");
    }
    // What the mails are built with must take it too (a name with a comma needs
    // quotes, `a..b@x` is not an address): refused here, not mail by mail later.
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err("is not an address mails can be sent from (RFC 5322): quote a name with commas or dots in it, e.g. \"Acme, Inc.\" <status@acme.example>");
    }
    Ok(())
}
