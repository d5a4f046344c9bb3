//! The command layer's executor: [`Daemon::run`] carries out a [`Command`] from the
//! control socket or the write API, and [`Daemon::set_windows`] hands the daemon the
//! maintenance windows the store holds.

use serde_json::Value;

use super::{now, publish, Daemon};
use crate::platform::{By, CmdError, Command, Window};

impl Daemon {
    /// Executes one command on behalf of `by`; the reply's fields as JSON.
    pub fn run(&self, cmd: Command, by: &By) -> Result<Value, CmdError> {
        let _ = (cmd, by);
        Err(CmdError::Unavailable("not implemented yet".into()))
    }

    /// Replaces the automatic maintenance windows (all of them, in force or not) and
    /// publishes the snapshot they give.
    pub fn set_windows(&self, windows: Vec<Window>) {
        let mut inner = self.lock();
        inner.windows = windows;
        let t = now();
        publish(&self.snapshot, &inner, t);
        self.wake_expiry.notify_one();
    }
}
