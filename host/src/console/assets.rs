//! The console's scripts, stylesheet and icon, embedded in the binary and
//! served under `/console/assets/` (and the icon also at `/favicon.ico`,
//! where browsers and other clients look for it). They are public (no
//! session needed): they hold no data, and the login page needs the
//! stylesheet.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: name, media type, content.
type Asset = (&'static str, &'static str, &'static [u8]);

const JS: &str = "text/javascript; charset=utf-8";

/// The icon `/favicon.ico` answers with (16 and 32 pixels).
const FAVICON_ICO: &[u8] = include_bytes!("assets/favicon.ico");

const ASSETS: &[Asset] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/console.css"),
    ),
    ("common.js", JS, include_bytes!("assets/common.js")),
    ("forms.js", JS, include_bytes!("assets/forms.js")),
    ("instances.js", JS, include_bytes!("assets/instances.js")),
    ("instance.js", JS, include_bytes!("assets/instance.js")),
    (
        "new-instance.js",
        JS,
        include_bytes!("assets/new-instance.js"),
    ),
    ("plugins.js", JS, include_bytes!("assets/plugins.js")),
    ("events.js", JS, include_bytes!("assets/events.js")),
    ("event.js", JS, include_bytes!("assets/event.js")),
    ("inbound.js", JS, include_bytes!("assets/inbound.js")),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
];

/// The embedded file called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _, _)| *n == name)
}

/// `body` as `media_type`, revalidated on every load so a new binary's
/// assets show at once, and never sniffed as anything else.
fn respond(media_type: &'static str, body: &'static [u8]) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some((_, media_type, body)) => respond(media_type, body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /favicon.ico`.
pub async fn favicon() -> Response {
    respond("image/x-icon", FAVICON_ICO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_an_ico_file() {
        // ICONDIR: reserved 0, type 1 (icon), then the image count.
        assert_eq!(&FAVICON_ICO[..4], &[0, 0, 1, 0]);
        assert!(FAVICON_ICO[4] >= 1);
        let svg = find("favicon.svg").unwrap().2;
        assert!(svg.starts_with(b"<svg"));
    }
}
