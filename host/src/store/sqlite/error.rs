//! SQLite's errors as the store's backend-neutral ones: each result code
//! becomes an [`ErrorKind`], and SQLite's error stays chained as the source.

use rusqlite::ErrorCode;

use super::super::error::{ErrorKind, StoreError};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let kind = kind_of(&e);
        StoreError::with_source(kind, format!("SQLite: {e}"), e)
    }
}

/// What kind of failure SQLite reported.
fn kind_of(e: &rusqlite::Error) -> ErrorKind {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(err, _) => match err.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed => ErrorKind::Unavailable,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => ErrorKind::Corrupt,
            ErrorCode::ConstraintViolation => ErrorKind::Conflict,
            _ => ErrorKind::Internal,
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => ErrorKind::Corrupt,
        _ => ErrorKind::Internal,
    }
}

/// Turns a foreign-key violation on insert into "no such instance".
pub(super) fn missing_instance(e: rusqlite::Error, instance_id: i64) -> StoreError {
    match e.sqlite_error() {
        Some(err) if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::no_such_instance(instance_id)
        }
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn result_codes_map_to_kinds_with_the_cause_kept() {
        let busy = StoreError::from(failure(rusqlite::ffi::SQLITE_BUSY));
        assert_eq!(busy.kind(), ErrorKind::Unavailable);
        assert!(std::error::Error::source(&busy).is_some());
        let corrupt = StoreError::from(failure(rusqlite::ffi::SQLITE_CORRUPT));
        assert_eq!(corrupt.kind(), ErrorKind::Corrupt);
        let unique = StoreError::from(failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE));
        assert_eq!(unique.kind(), ErrorKind::Conflict);
        let fk = missing_instance(failure(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY), 9);
        assert!(fk.is_not_found());
    }
}
