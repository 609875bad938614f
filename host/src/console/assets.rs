//! The console's scripts and stylesheet, embedded in the binary and served
//! under `/console/assets/`. They are public (no session needed): they hold
//! no data, and the login page needs the stylesheet.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file: name, media type, content.
type Asset = (&'static str, &'static str, &'static str);

const JS: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    ("common.js", JS, include_str!("assets/common.js")),
    ("instances.js", JS, include_str!("assets/instances.js")),
    (
        "new-instance.js",
        JS,
        include_str!("assets/new-instance.js"),
    ),
    ("plugins.js", JS, include_str!("assets/plugins.js")),
    ("events.js", JS, include_str!("assets/events.js")),
    ("event.js", JS, include_str!("assets/event.js")),
];

/// The embedded file called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _, _)| *n == name)
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some((_, media_type, body)) = find(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (*body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    // Revalidated on every load, so a new binary's assets show at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
