//! Console sessions: random tokens kept in memory with an expiry, the
//! cookie that carries them, and the middleware that lets a session stand in
//! for the management credentials on API calls.
//!
//! A token is 32 random bytes; only its SHA-256 is kept, so a lookup never
//! compares secret bytes. A session ends after [`IDLE`] without a request or
//! [`LIFETIME`] after login, whichever comes first, on logout, and when the
//! host restarts. At most [`MAX_SESSIONS`] live at once; the oldest goes
//! first.
//!
//! Cross-site request forgery: the cookie is `SameSite=Strict`, so browsers
//! do not send it with requests started by other sites. Other ports of the
//! same host count as the same *site*, though, so API requests that change
//! state must also carry the `X-Plugboard-Console` header, which a page of
//! another origin cannot add without a CORS preflight the host never
//! grants; and a request the browser labels as coming from another origin
//! (`Sec-Fetch-Site`) is never treated as the console's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

struct Entry {
    created: Instant,
    last_seen: Instant,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.created) < LIFETIME && now.duration_since(self.last_seen) < IDLE
    }
}

/// The live sessions, keyed by the SHA-256 of their token.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Entry>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Starts a session and returns its token (shown only to the browser).
    pub fn open(&self) -> String {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, e| e.live(now));
        while live.len() >= MAX_SESSIONS {
            let oldest = live.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k);
            match oldest {
                Some(k) => live.remove(&k),
                None => break,
            };
        }
        live.insert(
            digest(&token),
            Entry {
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// Whether `token` names a live session; a hit keeps it alive.
    pub fn touch(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let key = digest(token);
        match live.get_mut(&key) {
            Some(e) if e.live(now) => {
                e.last_seen = now;
                true
            }
            Some(_) => {
                live.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Ends the session `token` names, if any.
    pub fn close(&self, token: &str) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.remove(&digest(token));
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
    let marked = (safe || headers.contains_key(CONSOLE_HEADER))
        && !cross_origin(headers)
        && token(headers).is_some_and(|t| console.sessions.touch(t));
    if marked {
        request.extensions_mut().insert(Authenticated);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_touch_close() {
        let s = Sessions::default();
        let t = s.open();
        assert!(t.len() >= 43);
        assert!(s.touch(&t));
        assert!(!s.touch("not-a-session"));
        s.close(&t);
        assert!(!s.touch(&t));
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.open();
        for _ in 0..MAX_SESSIONS {
            s.open();
        }
        assert!(!s.touch(&first));
        assert_eq!(s.live.lock().unwrap().len(), MAX_SESSIONS);
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
