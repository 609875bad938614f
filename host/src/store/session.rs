//! Console sessions kept in the store, so every replica on one database
//! knows every session: a session opened through one replica is accepted by
//! the others, and a logout through any of them ends it everywhere.
//!
//! Only the SHA-256 of a session's token is stored (a stolen copy of the
//! table opens nothing). A session ends after [`SessionRules::idle_ms`]
//! without a request or [`SessionRules::lifetime_ms`] after login,
//! whichever comes first. Opening a session removes the expired ones and
//! the oldest beyond [`SessionRules::max`]. A request through a live
//! session stamps it seen, at most once per [`SessionRules::touch_every_ms`],
//! so a busy console page does not write on every request.

/// How long sessions live and how many are kept.
#[derive(Clone, Copy, Debug)]
pub struct SessionRules {
    /// A session ends after this long without a request.
    pub idle_ms: i64,
    /// A session ends this long after login, however busy.
    pub lifetime_ms: i64,
    /// Most sessions kept at once; the oldest go first.
    pub max: usize,
    /// A live session's last request is stamped at most this often.
    pub touch_every_ms: i64,
}

impl SessionRules {
    /// Whether a session created at `created_ms` and last seen at
    /// `last_seen_ms` is still live at `now_ms`.
    pub fn live(&self, created_ms: i64, last_seen_ms: i64, now_ms: i64) -> bool {
        now_ms - created_ms < self.lifetime_ms && now_ms - last_seen_ms < self.idle_ms
    }

    /// The cut-offs at `now_ms`: sessions created at or before the first,
    /// or last seen at or before the second, have ended.
    pub(crate) fn expired_at(&self, now_ms: i64) -> SessionCutoffs {
        SessionCutoffs {
            created_before: now_ms - self.lifetime_ms,
            seen_before: now_ms - self.idle_ms,
            max: i64::try_from(self.max).unwrap_or(i64::MAX),
        }
    }
}

/// What a backend removes when a session is opened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionCutoffs {
    /// Sessions created at or before this time have ended.
    pub created_before: i64,
    /// Sessions last seen at or before this time have ended.
    pub seen_before: i64,
    /// Sessions kept at most, newest first.
    pub max: i64,
}

/// A stored session: when it was opened and last used (unix ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredSession {
    /// When the session was opened.
    pub created_ms: i64,
    /// When a request last used it (stamped at most every
    /// [`SessionRules::touch_every_ms`]).
    pub last_seen_ms: i64,
}
