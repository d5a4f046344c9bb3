//! The mail worker: one task that turns the outbox's events into queued mails and sends
//! the queue through `[smtp]`.
//!
//! Events are read like a notification target named [`MAIL_TARGET`] reads them: from
//! its cursor, in order; the mails an event makes for every confirmed subscriber it
//! touches are queued in the same transaction as the cursor's move past it, so each
//! event becomes mails exactly once, across crashes. A subscriber only gets events made
//! after it confirmed.
//!
//! Sending: one mail at a time, each subscriber's in the order they were queued. A
//! failure that is the server's (no connection, TLS, a timeout, authentication, 421)
//! pauses all sending, 0.5 s doubling up to 5 min; a recipient refused for now (4xx) is
//! retried the same way on its own; one refused for good (5xx) is dropped. A mail
//! still not sent 24 hours after it was queued is dropped with an error. Errors name
//! the server, never the password. Without `[smtp]` (it can be removed by a reload),
//! nothing is queued or sent and the events of that time are skipped.

use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use time::OffsetDateTime;
use tracing::{error, info, warn};

use super::mail::{self, Notice};
use super::Handle;
use crate::config::{Smtp, SmtpTls};
use crate::store::{blocking, QueuedMail, Store, StoreError};

/// The outbox cursor of e-mail subscriptions.
pub use crate::notify::MAIL_QUEUE as MAIL_TARGET;
/// A queued mail not sent after this long is dropped.
pub const GIVE_UP_AFTER: time::Duration = time::Duration::hours(24);
/// Events read from the outbox at a time.
const BATCH: usize = 200;
/// One SMTP exchange (connect, TLS, the mail) at most.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Pending subscribers are dropped this long after they subscribed.
const PENDING_FOR: time::Duration = time::Duration::days(mail::CONFIRM_DAYS);

/// 0.5 s · 2^(n-1), at most 5 minutes: the wait after the `n`th failure (the notify
/// targets' backoff).
pub fn backoff(n: u32) -> Duration {
    crate::notify::worker::backoff_base(n.saturating_sub(1))
}

/// The connection to `[smtp]`, for the config it was made from.
struct Sender {
    smtp: Smtp,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Sender {
    fn new(smtp: &Smtp) -> Result<Sender, String> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.server.as_str())
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(30)));
        let params = || {
            TlsParameters::new(smtp.server.clone())
                .map_err(|e| format!("SMTP server {}: TLS: {e}", smtp.server))
        };
        b = match smtp.tls {
            SmtpTls::None => b.tls(Tls::None),
            SmtpTls::Starttls => b.tls(Tls::Required(params()?)),
            SmtpTls::Tls => b.tls(Tls::Wrapper(params()?)),
        };
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            b = b.credentials(Credentials::new(
                user.clone(),
                password.expose_str().to_string(),
            ));
        }
        Ok(Sender {
            smtp: smtp.clone(),
            transport: b.build(),
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.smtp.server, self.smtp.port)
    }
}

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The server's: every mail waits.
    Server,
    /// This recipient, for now.
    Later,
    /// This recipient, for good.
    Never,
}

fn classify(e: &lettre::transport::smtp::Error) -> Failure {
    let Some(code) = e.status().map(u16::from) else {
        return Failure::Server;
    };
    match code {
        // Service unavailable; authentication required, too weak, failed, or needing
        // encryption: nothing can be sent until that changes.
        421 | 454 | 530 | 534 | 535 | 538 => Failure::Server,
        400..=499 => Failure::Later,
        _ => Failure::Never,
    }
}

/// Follows the outbox and sends the queue until the process ends.
pub async fn run(daemon: Handle) {
    let store = daemon.store.clone();
    let mut wake = store.wake();
    let mut configs = daemon.configs.clone();
    let (mut wake_open, mut configs_open) = (true, true);
    let mut sender: Option<Sender> = None;
    let mut worker = Worker::default();
    // Whether [smtp] was set at the last turn (`None`: the first turn).
    let mut was_on: Option<bool> = None;
    loop {
        let config = daemon.config();
        let on = config.smtp.is_some();
        if on && was_on == Some(false) {
            // Turned on by a reload: what happened while it was off is not mailed.
            let s = store.clone();
            if let Err(e) = blocking(move || s.skip_mail_events(MAIL_TARGET)).await {
                error!(target: "offramp::mail", "{e}");
            }
        }
        was_on = Some(on);
        let wait = match &config.smtp {
            None => {
                // Off: nothing to do until a reload turns it on (events are not read).
                sender = None;
                if configs_open {
                    configs_open = configs.changed().await.is_ok();
                } else {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                continue;
            }
            Some(smtp) => {
                if sender.as_ref().is_none_or(|s| s.smtp != *smtp) {
                    sender = match Sender::new(smtp) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            error!(target: "offramp::mail", "{e}; no mail is sent");
                            None
                        }
                    };
                }
                let mut wait = Duration::from_secs(3600);
                if let Err(e) = worker.queue_events(&daemon, &store).await {
                    error!(target: "offramp::mail", "queueing mails: {e}; trying again in 5s");
                    wait = Duration::from_secs(5);
                }
                worker.prune(&store).await;
                if let Some(sender) = &sender {
                    wait = wait.min(worker.send_due(&daemon, &store, sender).await);
                }
                wait
            }
        };
        tokio::select! {
            r = wake.changed(), if wake_open => wake_open = r.is_ok(),
            r = configs.changed(), if configs_open => configs_open = r.is_ok(),
            () = super::queued().notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[derive(Default)]
struct Worker {
    /// Server failures in a row, and when sending may resume.
    server_failures: u32,
    paused_until: Option<tokio::time::Instant>,
    last_prune: Option<tokio::time::Instant>,
}

impl Worker {
    /// Queues the mails of the events after the cursor.
    async fn queue_events(&mut self, daemon: &Handle, store: &Arc<Store>) -> Result<(), String> {
        let d = daemon.clone();
        let s = store.clone();
        let queued = blocking(move || queue_events(&d, &s)).await?;
        if queued > 0 {
            info!(target: "offramp::mail", mails = queued, "mails queued for subscribers");
        }
        Ok(())
    }

    /// Drops pending subscribers older than a week, once an hour.
    async fn prune(&mut self, store: &Arc<Store>) {
        let now = tokio::time::Instant::now();
        if self
            .last_prune
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(3600))
        {
            return;
        }
        self.last_prune = Some(now);
        let s = store.clone();
        let cutoff = OffsetDateTime::now_utc() - PENDING_FOR;
        match blocking(move || s.prune_pending(cutoff)).await {
            Ok(0) => {}
            Ok(n) => {
                info!(target: "offramp::mail", subscribers = n, "dropped subscribers that did not confirm within a week")
            }
            Err(e) => error!(target: "offramp::mail", "{e}"),
        }
    }

    /// Sends what is due; how long until the next attempt.
    async fn send_due(&mut self, daemon: &Handle, store: &Arc<Store>, sender: &Sender) -> Duration {
        let idle = Duration::from_secs(3600);
        if let Some(until) = self.paused_until {
            let now = tokio::time::Instant::now();
            if until > now {
                return until - now;
            }
            self.paused_until = None;
        }
        loop {
            let s = store.clone();
            let m = match blocking(move || s.next_mail()).await {
                Ok(Some(m)) => m,
                Ok(None) => return idle,
                Err(e) => {
                    error!(target: "offramp::mail", "{e}; trying again in 5s");
                    return Duration::from_secs(5);
                }
            };
            let now = OffsetDateTime::now_utc();
            if m.next_at > now {
                return Duration::try_from(m.next_at - now).unwrap_or(idle);
            }
            if now - m.created_at > GIVE_UP_AFTER {
                error!(target: "offramp::mail", subscriber = %m.subscriber, kind = %m.kind, attempts = m.attempts, server = %sender.server(), "mail not sent within 24 hours; dropped");
                self.done(store, &m).await;
                continue;
            }
            let status_url = daemon.snapshot.load().table.status_origin.clone();
            let base = mail::base(status_url.as_deref(), &m.origin);
            let unsubscribe = mail::unsubscribe_url(&base, &m.unsub_token);
            let message = match mail::message(&sender.smtp.from, &m, &unsubscribe) {
                Ok(msg) => msg,
                Err(e) => {
                    error!(target: "offramp::mail", subscriber = %m.subscriber, kind = %m.kind, "{e}; mail dropped");
                    self.done(store, &m).await;
                    continue;
                }
            };
            let sent = tokio::time::timeout(SEND_TIMEOUT, sender.transport.send(message)).await;
            let (failure, why) = match sent {
                Ok(Ok(_)) => {
                    info!(target: "offramp::mail", subscriber = %m.subscriber, kind = %m.kind, "mail sent");
                    self.server_failures = 0;
                    self.done(store, &m).await;
                    continue;
                }
                Ok(Err(e)) => (classify(&e), e.to_string()),
                Err(_) => (
                    Failure::Server,
                    format!("no answer within {}s", SEND_TIMEOUT.as_secs()),
                ),
            };
            let attempt = m.attempts.saturating_add(1);
            let server = sender.server();
            let wait = match failure {
                Failure::Never => {
                    error!(target: "offramp::mail", subscriber = %m.subscriber, kind = %m.kind, server = %server, "the mail server refused the mail: {why}; dropped");
                    self.done(store, &m).await;
                    continue;
                }
                Failure::Later => backoff(attempt),
                Failure::Server => {
                    self.server_failures = self.server_failures.saturating_add(1);
                    backoff(self.server_failures)
                }
            };
            warn!(target: "offramp::mail", subscriber = %m.subscriber, kind = %m.kind, attempt, server = %server, "sending a mail failed: {why}; next attempt in {}", crate::duration::format(wait));
            let next_at = now + wait;
            let s = store.clone();
            let (id, err) = (m.id, format!("SMTP server {server}: {why}"));
            if let Err(e) = blocking(move || s.mail_failed(id, &err, next_at)).await {
                error!(target: "offramp::mail", "{e}");
            }
            if failure == Failure::Server {
                self.paused_until = Some(tokio::time::Instant::now() + wait);
                return wait;
            }
        }
    }

    async fn done(&self, store: &Arc<Store>, m: &QueuedMail) {
        let s = store.clone();
        let id = m.id;
        if let Err(e) = blocking(move || s.mail_done(id)).await {
            error!(target: "offramp::mail", "{e}");
        }
    }
}

/// Turns the events after [`MAIL_TARGET`]'s cursor into queued mails; how many.
fn queue_events(daemon: &Handle, store: &Store) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let cursor = store.target(MAIL_TARGET)?.cursor;
        let events = store.events_after(cursor, BATCH)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(total);
        };
        let notices: Vec<(OffsetDateTime, Notice)> = events
            .iter()
            .filter_map(|e| Notice::parse(&e.kind, &e.body).map(|n| (e.at, n)))
            .collect();
        let mut mails = Vec::new();
        if !notices.is_empty() {
            let subscribers = store.subscribers()?;
            let snap = daemon.snapshot.load_full();
            let status_url = snap.table.status_origin.as_deref();
            for (at, n) in &notices {
                for s in subscribers
                    .iter()
                    .filter(|s| s.confirmed_at.is_some_and(|c| c <= *at) && n.wanted_by(s))
                {
                    let base = mail::base(status_url, &s.origin);
                    mails.push((s.id.clone(), n.mail(&snap.view.title, &base, s)));
                }
            }
        }
        store.queue_event_mails(MAIL_TARGET, last, &mails, OffsetDateTime::now_utc())?;
        total += mails.len();
        if events.len() < BATCH {
            return Ok(total);
        }
    }
}
