//! Named steps of block writing, WAL checkpointing and compaction where a crash is
//! worth testing.
//!
//! In unit tests a step can be made to fail ([`FAILPOINT`]), which stops the task there
//! as a crash would. In the real binary the environment variable
//! [`PAUSE_ENV`]`=<step>` makes the maintenance thread log the step and stop there for
//! good, so an end-to-end test can `kill -9` the process in the middle of that step and
//! check what a restart finds. Unset (always, outside tests), a step costs one load of
//! an already-read setting.

use crate::error::StorageError;

/// Environment variable naming the step at which maintenance pauses forever.
pub const PAUSE_ENV: &str = "VIGIL_TEST_PAUSE_AT";

/// The line logged (to stderr) when a step pauses; followed by the step's name.
pub const PAUSED_MARKER: &str = "vigil: paused at failpoint ";

/// Marks the step `name`: fails it in a unit test that asked for it, pauses forever in
/// a binary started with [`PAUSE_ENV`] naming it, and otherwise returns at once.
pub(crate) fn failpoint(name: &'static str) -> Result<(), StorageError> {
    #[cfg(test)]
    if FAILPOINT.with(|f| f.get() == Some(name)) {
        return Err(StorageError::Invalid(format!("simulated crash at {name}")));
    }
    if pause_requested(name) {
        pause_forever(name);
    }
    Ok(())
}

/// Whether [`PAUSE_ENV`] names `name`.
fn pause_requested(name: &str) -> bool {
    static PAUSE_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PAUSE_AT.get_or_init(|| std::env::var(PAUSE_ENV).ok()).as_deref() == Some(name)
}

/// Logs the marker and never returns: the test that asked for it kills the process.
fn pause_forever(name: &str) -> ! {
    use std::io::Write as _;
    let mut err = std::io::stderr();
    let _ = writeln!(err, "{PAUSED_MARKER}{name}");
    let _ = err.flush();
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
thread_local! {
    /// The step at which [`failpoint`] fails on this thread.
    pub(crate) static FAILPOINT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}
