//! The one error type at the store's edge, the same whichever database is
//! behind it.
//!
//! Callers look at [`StoreError::kind`] to tell a client mistake (a missing
//! instance, a stale version) from the database being unreachable or
//! broken; the database's own error stays attached as the
//! [`source`](std::error::Error::source) for the log.

use std::sync::Arc;

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database's own error, shared so one failed batch can report it to
/// every caller in the batch.
type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure a [`StoreError`] is: what the caller should do
/// about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named instance does not exist (or was deleted meanwhile).
    NotFound,
    /// The write conflicts with the stored state: the instance changed
    /// since the caller read it, or a unique value is taken.
    Conflict,
    /// A value cannot be stored as given (e.g. a date outside the years
    /// 0000–9999).
    InvalidValue,
    /// The database cannot be reached or is too busy right now, or the
    /// store has been closed; trying again later may succeed.
    Unavailable,
    /// Stored data is not what the schema promises.
    Corrupt,
    /// Anything else the database reported (a fault of the host).
    Internal,
}

/// Why a store operation failed.
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
}

impl StoreError {
    /// An error of `kind` with no underlying cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` caused by `source` (a database driver's error).
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The instance `id` does not exist.
    pub fn no_such_instance(id: i64) -> Self {
        Self::new(ErrorKind::NotFound, format!("instance {id} does not exist"))
    }

    /// The instance `id` is at `found`, not at the `expected` version the
    /// caller read.
    pub fn version_conflict(id: i64, expected: i64, found: i64) -> Self {
        Self::new(
            ErrorKind::Conflict,
            format!("instance {id} was changed meanwhile (version {found}, expected {expected})"),
        )
    }

    /// The store no longer accepts work.
    pub fn closed() -> Self {
        Self::new(ErrorKind::Unavailable, "the store is closed")
    }

    /// A value that cannot be stored.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, message)
    }

    /// Stored data that cannot be read back.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }

    /// The same failure reported for another item of a batch that failed
    /// as a whole.
    pub fn for_batch(&self) -> Self {
        Self {
            kind: self.kind,
            message: format!("the batch was not committed: {}", self.message),
            source: self.source.clone(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when the operation failed because the named instance is missing,
    /// which callers usually answer with 404 rather than 500.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        let kind = if e.is_data() || e.is_syntax() || e.is_eof() {
            ErrorKind::Corrupt
        } else {
            ErrorKind::Internal
        };
        Self::with_source(kind, format!("JSON column: {e}"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_instances_count_as_not_found() {
        assert!(StoreError::no_such_instance(7).is_not_found());
        assert!(!StoreError::closed().is_not_found());
        assert_eq!(
            StoreError::no_such_instance(7).to_string(),
            "instance 7 does not exist"
        );
        assert_eq!(
            StoreError::version_conflict(7, 1, 2).kind(),
            ErrorKind::Conflict
        );
    }

    #[test]
    fn the_cause_stays_chained_through_a_batch() {
        let cause = std::io::Error::other("disk full");
        let e = StoreError::with_source(ErrorKind::Unavailable, "writing failed: disk full", cause);
        let again = e.for_batch();
        assert_eq!(again.kind(), ErrorKind::Unavailable);
        assert!(again.to_string().starts_with("the batch was not committed"));
        let source = std::error::Error::source(&again).unwrap();
        assert_eq!(source.to_string(), "disk full");
    }
}
