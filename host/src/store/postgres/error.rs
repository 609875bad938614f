//! PostgreSQL's errors as the store's backend-neutral ones.
//!
//! A lost or refused connection, a server shutting down, too many clients,
//! a deadlock or serialization failure, or a pool that cannot hand out a
//! connection in time is [`ErrorKind::Unavailable`]: the caller may try
//! again, and a webhook is answered 503 rather than acknowledged. The
//! driver's error stays chained as the source.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use super::super::error::{ErrorKind, StoreError};

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let kind = kind_of(&e);
        let message = match e.as_db_error() {
            Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
            None => format!("PostgreSQL: {e}"),
        };
        StoreError::with_source(kind, message, e)
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => e.into(),
            other => StoreError::with_source(
                ErrorKind::Unavailable,
                format!("PostgreSQL connection pool: {other}"),
                other,
            ),
        }
    }
}

/// What kind of failure PostgreSQL (or the connection to it) reported.
pub(super) fn kind_of(e: &tokio_postgres::Error) -> ErrorKind {
    let Some(code) = e.code() else {
        // No SQL state: the connection, the socket or the protocol failed,
        // or a value could not be encoded.
        return if e.to_string().starts_with("error serializing") {
            ErrorKind::InvalidValue
        } else {
            ErrorKind::Unavailable
        };
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        return ErrorKind::Conflict;
    }
    match &code.code()[..2] {
        // Connection exception, transaction rollback (deadlock,
        // serialization), insufficient resources, operator intervention
        // (shutdown, cannot connect now), system error.
        "08" | "40" | "53" | "57" | "58" => ErrorKind::Unavailable,
        "22" => ErrorKind::InvalidValue,
        "23" => ErrorKind::Conflict,
        "XX" if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            ErrorKind::Corrupt
        }
        _ => ErrorKind::Internal,
    }
}

/// Whether trying the same transaction again may succeed: a deadlock or a
/// serialization failure between concurrent writers.
pub(super) fn is_transient(e: &StoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        })
}

/// Turns a foreign-key violation on insert into "no such instance".
pub(super) fn missing_instance(e: tokio_postgres::Error, instance_id: i64) -> StoreError {
    if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        StoreError::no_such_instance(instance_id)
    } else {
        e.into()
    }
}

/// Reads column `idx` of a row, a value of the wrong type being corrupt
/// data rather than an unreachable database.
pub(super) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|e| StoreError::corrupt(format!("PostgreSQL column {idx}: {e}")))
}
