//! Console sessions: random tokens kept in the store with an expiry, the
//! cookie that carries them, and the middleware that lets a session stand in
//! for the management credentials on API calls.
//!
//! A token is 32 random bytes; only its SHA-256 is stored (see
//! [`crate::store::SessionRules`]), so a lookup never compares secret bytes
//! and the table opens nothing by itself. Kept in the store, a session is
//! known to every replica on one database: opened through one, it is
//! accepted by the others, and a logout through any of them ends it. A
//! session ends after [`IDLE`] without a request or [`LIFETIME`] after
//! login, whichever comes first, and on logout. At most [`MAX_SESSIONS`]
//! live at once; the oldest goes first. If the store cannot be read, a
//! session is not recognized (the request then needs the management
//! credentials) and the failure is logged.
//!
//! Cross-site request forgery: the cookie is `SameSite=Strict`, so browsers
//! do not send it with requests started by other sites. Other ports of the
//! same host count as the same *site*, though, so API requests that change
//! state must also carry the `X-Plugboard-Console` header, which a page of
//! another origin cannot add without a CORS preflight the host never
//! grants; and a request the browser labels as coming from another origin
//! (`Sec-Fetch-Site`) is never treated as the console's.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, CookieBuilder, SameSite};
use sha2::{Digest, Sha256};

use super::Console;
use crate::api::auth::Authenticated;
use crate::store::{SessionRules, Store};

/// Name of the session cookie.
pub const COOKIE: &str = "plugboard_console";

/// Header the console's JavaScript puts on every API request.
pub const CONSOLE_HEADER: &str = "x-plugboard-console";

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(60 * 60);

/// A session ends this long after login, however busy.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Most sessions kept at once.
pub const MAX_SESSIONS: usize = 256;

/// A live session's last use is written at most this often.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The rules the store applies to console sessions.
pub const RULES: SessionRules = SessionRules {
    idle_ms: IDLE.as_millis() as i64,
    lifetime_ms: LIFETIME.as_millis() as i64,
    max: MAX_SESSIONS,
    touch_every_ms: TOUCH_EVERY.as_millis() as i64,
};

/// The console's sessions, kept in the store.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// The sessions kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Starts a session and returns its token (shown only to the browser);
    /// `None` if the store could not keep it (logged).
    pub async fn open(&self) -> Option<String> {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        match self.store.open_session(digest(&token), RULES).await {
            Ok(()) => Some(token),
            Err(e) => {
                tracing::error!(error = %e, "storing a console session failed");
                None
            }
        }
    }

    /// Whether `token` names a live session; a hit keeps it alive.
    pub async fn touch(&self, token: &str) -> bool {
        match self.store.touch_session(digest(token), RULES).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(error = %e, "reading a console session failed");
                false
            }
        }
    }

    /// Ends the session `token` names, if any.
    pub async fn close(&self, token: &str) {
        if let Err(e) = self.store.close_session(digest(token)).await {
            tracing::warn!(error = %e, "ending a console session failed");
        }
    }
}

/// The session token a request's `Cookie` headers carry, if any.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .and_then(|cookie| cookie.value_raw())
        .filter(|v| !v.is_empty())
}

/// The session cookie with the attributes it always carries: sent back on
/// every path, hidden from scripts, never on cross-site requests.
fn session_cookie(value: &str) -> CookieBuilder<'_> {
    Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
}

/// The `Set-Cookie` value that hands `token` to the browser.
pub fn set_cookie(token: &str) -> String {
    session_cookie(token).build().to_string()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    session_cookie("")
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// Whether the browser says the request came from another origin.
pub fn cross_origin(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v, "same-origin" | "none"))
}

/// Middleware: a request with a live session cookie (and, when it changes
/// state, the console header) is marked [`Authenticated`] for the API.
/// It never rejects anything itself; requests it does not mark still need
/// the `Authorization` header.
pub async fn recognize(
    State(console): State<Console>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let candidate = (safe || headers.contains_key(CONSOLE_HEADER)) && !cross_origin(headers);
    let marked = match token(headers).filter(|_| candidate) {
        Some(t) => console.sessions.touch(t).await,
        None => false,
    };
    if marked {
        request.extensions_mut().insert(Authenticated);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_open_touch_close() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::store::StoreConfig::Sqlite {
            path: dir.path().join("store.db"),
        };
        let s = Sessions::new(Store::open(&config).await.unwrap());
        let t = s.open().await.unwrap();
        assert!(t.len() >= 43);
        assert!(s.touch(&t).await);
        assert!(!s.touch("not-a-session").await);
        s.close(&t).await;
        assert!(!s.touch(&t).await);
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; plugboard_console=tok; b=2".parse().unwrap());
        assert_eq!(token(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.append("cookie", "plugboard_console=".parse().unwrap());
        assert_eq!(token(&h), None);
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1".parse().unwrap());
        h.append("cookie", "plugboard_console=tok2".parse().unwrap());
        assert_eq!(token(&h), Some("tok2"), "in a second Cookie header");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_cleared_by_max_age() {
        let set = Cookie::parse(set_cookie("tok")).unwrap();
        assert_eq!((set.name(), set.value()), (COOKIE, "tok"));
        assert_eq!(set.path(), Some("/"));
        assert_eq!(set.http_only(), Some(true));
        assert_eq!(set.same_site(), Some(SameSite::Strict));
        let cleared = Cookie::parse(clear_cookie()).unwrap();
        assert_eq!((cleared.name(), cleared.value()), (COOKIE, ""));
        assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    }

    #[test]
    fn only_same_origin_or_typed_requests_count() {
        let mut h = HeaderMap::new();
        assert!(!cross_origin(&h));
        h.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!cross_origin(&h));
        h.insert("sec-fetch-site", "same-site".parse().unwrap());
        assert!(cross_origin(&h));
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_origin(&h));
    }
}
