//! Every answer offramp writes itself (redirects, maintenance and error pages, the
//! status host's pages and API, 400/408/414/431): one [`Reply`] value, built here, and
//! written either by Pingora's session (see `proxy`) or as HTTP/1.1 bytes by [`h1`]
//! (the fast path, the connection guard, the admin listener, the demo origin).
//!
//! Owns: the shape of those answers (status, `Content-Type`, `Cache-Control: no-store`,
//! `Location`, `Retry-After`, fixed security headers) and their HTML ([`pages`]). Does
//! not own: which answer a request gets (see `request`).

pub mod h1;
pub mod pages;

use bytes::Bytes;

/// `Content-Type` of offramp's HTML pages.
pub const HTML: &str = "text/html; charset=utf-8";
/// `Content-Type` of the status host's API.
pub const JSON: &str = "application/json";
/// `Content-Type` of the status host's scripts.
pub const JS: &str = "text/javascript; charset=utf-8";
/// Content-Type of the Atom feed.
pub const ATOM: &str = "application/atom+xml; charset=utf-8";
/// Content-Type of the RSS feed.
pub const RSS: &str = "application/rss+xml; charset=utf-8";

/// A complete answer offramp writes itself. Every one carries `Cache-Control:
/// no-store`: none of them may be kept by a cache once the site's state changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// `Retry-After` in seconds (a maintenance page with a known end).
    pub retry_after: Option<u64>,
    /// Fixed headers (security policy, CORS, `Allow`).
    pub fixed: &'static [(&'static str, &'static str)],
    pub body: Body,
    /// The connection closes after this answer.
    pub close: bool,
}

/// A reply's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bytes(Bytes),
    /// The short page of a redirect to `location`, rendered when written (the fast path
    /// writes it straight into its output buffer).
    RedirectPage,
}

impl Reply {
    /// An HTML page.
    pub fn page(status: u16, html: String) -> Reply {
        Reply::typed(status, HTML, Bytes::from(html))
    }

    /// A body of any type.
    pub fn typed(status: u16, content_type: &'static str, body: Bytes) -> Reply {
        Reply {
            status,
            content_type,
            location: None,
            retry_after: None,
            fixed: &[],
            body: Body::Bytes(body),
            close: false,
        }
    }

    /// A redirect (302, 307, 308) to `location` with its short HTML page.
    pub fn redirect(status: u16, location: String) -> Reply {
        Reply {
            status,
            content_type: HTML,
            location: Some(location),
            retry_after: None,
            fixed: &[],
            body: Body::RedirectPage,
            close: false,
        }
    }

    /// With these fixed headers.
    pub fn with_fixed(mut self, fixed: &'static [(&'static str, &'static str)]) -> Reply {
        self.fixed = fixed;
        self
    }

    /// The body's length in bytes.
    pub fn body_len(&self) -> usize {
        match &self.body {
            Body::Bytes(b) => b.len(),
            Body::RedirectPage => {
                pages::redirect_page_len(self.location.as_deref().unwrap_or_default())
            }
        }
    }

    /// The body's bytes.
    pub fn body_bytes(&self) -> Bytes {
        match &self.body {
            Body::Bytes(b) => b.clone(),
            Body::RedirectPage => {
                let mut out = Vec::new();
                pages::push_redirect_page(&mut out, self.location.as_deref().unwrap_or_default());
                Bytes::from(out)
            }
        }
    }
}
