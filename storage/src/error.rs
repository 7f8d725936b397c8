//! Errors of the storage layer.

use thiserror::Error;

/// Why one sample was refused; the rest of its batch is still written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum AppendError {
    /// Older than the newest sample already stored for the series.
    #[error("out of order sample")]
    OutOfOrder,
    /// Same timestamp as the newest stored sample but a different value.
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
}

/// A failure of the storage itself (I/O, corruption, bad arguments).
#[derive(Debug, Error)]
pub enum StorageError {
    /// The disk failed us.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Stored data did not decode.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The caller asked for something invalid, e.g. a bad regex.
    #[error("{0}")]
    Invalid(String),
}

impl StorageError {
    /// Wraps an I/O error with what we were doing when it happened.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io { context: context.into(), source }
    }
}
