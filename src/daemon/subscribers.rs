//! `subscribers_list` and `subscribers_remove` (CONTRACT section 11): the e-mail
//! subscribers as the database holds them. The database is read and written outside
//! the daemon's lock (a subscriber is nothing the snapshot shows).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::platform::unavailable;
use super::Daemon;
use crate::platform::{By, CmdError};
use crate::store::{Store, SubscriberRow};

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| crate::text::rfc3339(t.into()))
        .map_or(Value::Null, Value::String)
}

/// A subscriber as `subscribers list --json` prints it.
pub fn subscriber_json(s: &SubscriberRow) -> Value {
    json!({
        "id": s.id,
        "name": s.address,
        "address": s.address,
        "status": if s.confirmed_at.is_some() { "confirmed" } else { "pending" },
        "components": s.components,
        "created_at": rfc3339(Some(s.created_at)),
        "confirmed_at": rfc3339(s.confirmed_at),
    })
}

impl Daemon {
    fn subscriber_store(&self) -> Result<std::sync::Arc<Store>, CmdError> {
        self.store().ok_or_else(|| {
            CmdError::Unavailable("the status platform has no database in this process".into())
        })
    }

    /// Every subscriber, oldest first.
    pub(super) fn subscribers_list(&self) -> Result<Value, CmdError> {
        let store = self.subscriber_store()?;
        let all = store.subscribers().map_err(unavailable)?;
        Ok(Value::Array(all.iter().map(subscriber_json).collect()))
    }

    /// Removes the subscriber of `address` (any case) with its queued mails.
    pub(super) fn subscribers_remove(&self, address: &str, by: &By) -> Result<Value, CmdError> {
        let address = address.trim().to_ascii_lowercase();
        let store = self.subscriber_store()?;
        match store
            .remove_subscriber_by_address(&address)
            .map_err(unavailable)?
        {
            Some(id) => {
                tracing::info!(target: "offramp::mail", subscriber = %id, by = %by.0, "subscriber removed");
                Ok(json!({"id": id, "address": address}))
            }
            None => Err(CmdError::NotFound(format!(
                "no subscriber with the address {address:?}"
            ))),
        }
    }
}
