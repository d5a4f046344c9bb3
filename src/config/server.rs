//! `[server]` (listeners, the control socket, the state file and other process-wide
//! settings, with their defaults) and `[demo]`. Checks that compare these with other
//! sections (listener addresses used twice, TLS) are `validate`'s.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::reader::Ctx;
use super::{
    resolve_path, Demo, Server, DEFAULT_CONTROL, DEFAULT_DATA, DEFAULT_GRACE, DEFAULT_STATE,
};

const SERVER_KEYS: &[&str] = &[
    "http",
    "https",
    "certs",
    "redirect_https",
    "threads",
    "control",
    "control_group",
    "state",
    "grace",
    "admin",
    "access_log",
    "data",
    "admin_tls",
    "health_checks",
];

/// `[server]`, defaults filled in; paths resolve against the config file's directory.
pub(super) fn parse_server(ctx: &mut Ctx<'_>, t: &DeTable<'_>, file: &Path) -> Server {
    let mut s = Server {
        http: Vec::new(),
        https: Vec::new(),
        certs: None,
        redirect_https: false,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        control: PathBuf::from(DEFAULT_CONTROL),
        control_group: None,
        state: PathBuf::from(DEFAULT_STATE),
        grace: DEFAULT_GRACE,
        admin: None,
        access_log: true,
        data: PathBuf::from(DEFAULT_DATA),
        admin_tls: false,
        health_checks: true,
    };
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("server.{name}");
        match name {
            "http" => s.http = ctx.addrs(&key, v).unwrap_or_default(),
            "https" => s.https = ctx.addrs(&key, v).unwrap_or_default(),
            "certs" => s.certs = ctx.string(&key, v).map(|p| resolve_path(file, &p)),
            "redirect_https" => s.redirect_https = ctx.boolean(&key, v).unwrap_or(false),
            "threads" => {
                if let Some(n) = ctx.integer(&key, v) {
                    if (1..=256).contains(&n) {
                        s.threads = n as usize;
                    } else {
                        ctx.err(
                            &v.span(),
                            &key,
                            format!("must be between 1 and 256, got {n}"),
                        );
                    }
                }
            }
            "control" => {
                if let Some(p) = ctx.string(&key, v) {
                    s.control = resolve_path(file, &p);
                    // sun_path holds 108 bytes including the terminating NUL.
                    if s.control.as_os_str().len() > 107 {
                        ctx.err(&v.span(), &key, format!("socket path {} is longer than the 107 bytes a Unix socket path may have", s.control.display()));
                    }
                }
            }
            "control_group" => {
                let gid = match v.get_ref() {
                    DeValue::Integer(_) => ctx.integer(&key, v).map(|n| {
                        u32::try_from(n)
                            .ok()
                            .filter(|g| *g != u32::MAX)
                            .ok_or(format!("{n} is not a valid group id"))
                    }),
                    _ => ctx.string(&key, v).map(|g| group_id(&g)),
                };
                match gid {
                    Some(Ok(g)) => s.control_group = Some(g),
                    Some(Err(e)) => ctx.err(&v.span(), &key, e),
                    None => {}
                }
            }
            "state" => {
                if let Some(p) = ctx.string(&key, v) {
                    s.state = resolve_path(file, &p)
                }
            }
            "grace" => s.grace = ctx.duration(&key, v).unwrap_or(DEFAULT_GRACE),
            "admin" => {
                if let Some(a) = ctx.string(&key, v) {
                    match a.parse::<SocketAddr>() {
                        Ok(addr) => s.admin = Some(addr),
                        Err(_) => {
                            ctx.err(&v.span(), &key, format!("{a:?} is not an IP:port address"))
                        }
                    }
                }
            }
            "access_log" => s.access_log = ctx.boolean(&key, v).unwrap_or(true),
            "admin_tls" => s.admin_tls = ctx.boolean(&key, v).unwrap_or(false),
            "health_checks" => s.health_checks = ctx.boolean(&key, v).unwrap_or(true),
            "data" => {
                if let Some(d) = ctx.string(&key, v) {
                    match data_path(&d) {
                        Ok(p) => s.data = resolve_path(file, p),
                        Err(e) => ctx.err(&v.span(), &key, e),
                    }
                }
            }
            _ => ctx.unknown(&key, &k.span(), SERVER_KEYS),
        }
    }
    s
}

/// The path of `[server] data`: a file path, or `sqlite:PATH`.
fn data_path(d: &str) -> Result<&str, String> {
    let p = d.strip_prefix("sqlite:").unwrap_or(d);
    if d.starts_with("postgres://") || d.starts_with("postgresql://") {
        return Err(
            "PostgreSQL is not supported by this offramp yet: use a SQLite file path".into(),
        );
    }
    if p.is_empty() {
        return Err("must be a file path".into());
    }
    Ok(p)
}

/// `[demo]`; `None` when its address is missing or invalid (that is an error).
pub(super) fn parse_demo(ctx: &mut Ctx<'_>, t: &DeTable<'_>, table: Range<usize>) -> Option<Demo> {
    let mut listen = None;
    let mut seen = false;
    for (k, v) in t.iter() {
        let name = k.get_ref().as_ref();
        let key = format!("demo.{name}");
        match name {
            "listen" => {
                seen = true;
                if let Some(a) = ctx.string(&key, v) {
                    match a.parse::<SocketAddr>() {
                        Ok(addr) => listen = Some(addr),
                        Err(_) => {
                            ctx.err(&v.span(), &key, format!("{a:?} is not an IP:port address"))
                        }
                    }
                }
            }
            _ => ctx.unknown(&key, &k.span(), &["listen"]),
        }
    }
    if !seen {
        ctx.err(
            &table,
            "demo.listen",
            "missing: the demo origin needs an address",
        );
    }
    listen.map(|listen| Demo { listen })
}

/// A group name or numeric id (as text) → gid, from the system's group database.
fn group_id(group: &str) -> Result<u32, String> {
    if !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()) {
        return group
            .parse::<u32>()
            .ok()
            .filter(|g| *g != u32::MAX)
            .ok_or_else(|| format!("{group} is not a valid group id"));
    }
    let unknown = || format!("unknown group {group:?} (not in the system's group database)");
    let name = std::ffi::CString::new(group).map_err(|_| unknown())?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: every pointer is valid for the call; `buf` outlives `grp`'s strings,
        // and only `gr_gid` is read from the result.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        match rc {
            0 if !found.is_null() => return Ok(grp.gr_gid),
            0 => return Err(unknown()),
            libc::ERANGE if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            e => {
                return Err(format!(
                    "cannot look up group {group:?}: {}",
                    std::io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
}
