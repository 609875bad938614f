//! The one error type at the store's edge.
//!
//! Callers match on [`StoreError`] to tell a missing instance (a client
//! mistake) from a database failure (the host's fault); everything else is
//! context for the log.

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A receipt named an instance that does not exist (or was deleted
    /// while the webhook was being handled).
    #[error("instance {0} does not exist")]
    NoSuchInstance(i64),
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A JSON column could not be encoded or decoded.
    #[error("JSON column: {0}")]
    Json(#[from] serde_json::Error),
    /// A value cannot be stored as given (e.g. a date outside the years
    /// 0000–9999, which RFC 3339 cannot write).
    #[error("value cannot be stored: {0}")]
    InvalidValue(String),
    /// A stored value is not what the schema promises (e.g. an unknown event
    /// type or an unparsable date).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The transaction holding a batch of receipts could not be committed,
    /// so none of the batch was stored.
    #[error("the batch was not committed: {0}")]
    BatchAborted(String),
    /// The writer has stopped; the store no longer accepts work.
    #[error("the store is closed")]
    Closed,
    /// A read task ended without an answer (it panicked or was cancelled).
    #[error("store task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// True when the operation failed because the named instance is missing,
    /// which callers usually answer with 404 rather than 500.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NoSuchInstance(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_instances_count_as_not_found() {
        assert!(StoreError::NoSuchInstance(7).is_not_found());
        assert!(!StoreError::Closed.is_not_found());
        assert_eq!(
            StoreError::NoSuchInstance(7).to_string(),
            "instance 7 does not exist"
        );
    }
}
