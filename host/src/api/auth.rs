//! Management API authentication: `Authorization: User <secret>,
//! Organization <secret>`, compared in constant time.
//!
//! There are no default credentials. The operator sets
//! `PLUGBOARD_USER_SECRET` and `PLUGBOARD_ORGANIZATION_SECRET`; otherwise the
//! host generates random ones on its first start, stores them in
//! `<data>/credentials.json` (mode 0600) and prints them once to standard
//! error. Later starts reuse that file silently.

use std::path::Path;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Management API credentials given by the operator.
#[derive(Clone)]
pub struct GivenCredentials {
    /// The `User` secret.
    pub user: String,
    /// The `Organization` secret.
    pub organization: String,
}

impl std::fmt::Debug for GivenCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GivenCredentials { .. }")
    }
}

/// The secrets management requests must present.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    user: String,
    organization: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// Credentials generated on this start (to print once), if any.
pub struct Generated(pub Credentials);

impl Credentials {
    /// Credentials from their two secrets.
    pub fn new(user: impl Into<String>, organization: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            organization: organization.into(),
        }
    }

    /// The `Authorization` header value that these credentials accept.
    pub fn header_value(&self) -> String {
        format!("User {}, Organization {}", self.user, self.organization)
    }

    /// The operator's credentials, or those kept in the data folder,
    /// generating them on first start.
    pub fn resolve(
        given: Option<&GivenCredentials>,
        data_dir: &Path,
    ) -> anyhow::Result<(Self, Option<Generated>)> {
        if let Some(g) = given {
            return Ok((Self::new(&g.user, &g.organization), None));
        }
        let path = data_dir.join("credentials.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let creds: Self = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid credentials JSON", path.display()))?;
            return Ok((creds, None));
        }
        let creds = Self::new(random_secret(), random_secret());
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data folder {}", data_dir.display()))?;
        write_private(&path, &serde_json::to_vec_pretty(&creds)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok((creds.clone(), Some(Generated(creds))))
    }

    /// Whether the two secrets are these credentials' (constant time).
    pub fn matches(&self, user: &str, organization: &str) -> bool {
        let u = user.as_bytes().ct_eq(self.user.as_bytes());
        let o = organization.as_bytes().ct_eq(self.organization.as_bytes());
        (u & o).into()
    }

    /// Whether an `Authorization` header value carries these credentials.
    pub fn accepts(&self, header: &str) -> bool {
        let mut user = None;
        let mut org = None;
        for part in header.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("User ") {
                user = Some(v.trim());
            } else if let Some(v) = part.strip_prefix("Organization ") {
                org = Some(v.trim());
            }
        }
        let (Some(user), Some(org)) = (user, org) else {
            return false;
        };
        self.matches(user, org)
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A request extension saying the request was already authenticated by a
/// means the host itself checked: a web console session
/// ([`crate::console`]). Only the host's own middleware inserts it; nothing a
/// client sends can.
#[derive(Clone, Copy, Debug)]
pub struct Authenticated;

/// Middleware rejecting requests without valid management credentials
/// (the `Authorization` header, or a request marked [`Authenticated`]).
pub async fn require(
    State(creds): State<std::sync::Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let ok = request.extensions().get::<Authenticated>().is_some()
        || request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| creds.accepts(v));
    if !ok {
        return Err(ApiError::unauthorized(
            "management calls need `Authorization: User <secret>, Organization <secret>`",
        ));
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_both_secrets() {
        let c = Credentials::new("u1", "o1");
        assert!(c.accepts("User u1, Organization o1"));
        assert!(c.accepts("Organization o1, User u1"));
        assert!(!c.accepts("User u1, Organization o2"));
        assert!(!c.accepts("User u1"));
        assert!(!c.accepts("Bearer u1"));
        assert!(!c.accepts(""));
    }

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (a, gen_a) = Credentials::resolve(None, dir.path()).unwrap();
        assert!(gen_a.is_some());
        let (b, gen_b) = Credentials::resolve(None, dir.path()).unwrap();
        assert!(gen_b.is_none());
        assert!(b.accepts(&a.header_value()));
        assert!(!format!("{a:?}").contains(&a.user));
    }
}
