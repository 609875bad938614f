//! The console's pages: one HTML shell (header, navigation, live region)
//! around a static skeleton per page, whose script fills it from the API.
//!
//! Pages carry no data, so nothing a vendor or a user typed is ever
//! rendered into HTML on the server; the scripts insert data as text.
//! Every page is sent with a strict Content-Security-Policy (scripts and
//! styles only from the host itself, no framing).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{session, Console};

/// Where the console starts after login.
pub const HOME: &str = "/console/instances";

/// One console page.
pub struct Page {
    /// Route.
    pub path: &'static str,
    /// Title of the browser tab.
    title: &'static str,
    /// Scripts under `/console/assets/` that drive it, without `.js`, in
    /// load order (after `common.js`, which every page loads).
    scripts: &'static [&'static str],
    /// Which navigation entry is current on this page.
    section: &'static str,
    /// Skeleton of the page's `<main>`.
    main: &'static str,
}

/// Every page, by route.
pub const PAGES: &[Page] = &[
    Page {
        path: "/console/instances",
        title: "Instances",
        scripts: &["instances"],
        section: "instances",
        main: include_str!("assets/pages/instances.html"),
    },
    Page {
        path: "/console/instances/new",
        title: "New instance",
        scripts: &["forms", "new-instance"],
        section: "instances",
        main: include_str!("assets/pages/new-instance.html"),
    },
    Page {
        path: "/console/instances/{id}",
        title: "Instance",
        scripts: &["forms", "instance"],
        section: "instances",
        main: include_str!("assets/pages/instance.html"),
    },
    Page {
        path: "/console/plugins",
        title: "Plugins",
        scripts: &["plugins"],
        section: "plugins",
        main: include_str!("assets/pages/plugins.html"),
    },
    Page {
        path: "/console/events",
        title: "Events",
        scripts: &["events"],
        section: "events",
        main: include_str!("assets/pages/events.html"),
    },
    Page {
        path: "/console/inbound",
        title: "Inbound",
        scripts: &["inbound"],
        section: "inbound",
        main: include_str!("assets/pages/inbound.html"),
    },
    Page {
        path: "/console/events/{event_id}",
        title: "Event",
        scripts: &["event"],
        section: "events",
        main: include_str!("assets/pages/event.html"),
    },
];

const SHELL: &str = include_str!("assets/pages/shell.html");

const NAV: &[(&str, &str, &str)] = &[
    ("instances", "/console/instances", "Instances"),
    ("plugins", "/console/plugins", "Plugins"),
    ("events", "/console/events", "Events"),
    ("inbound", "/console/inbound", "Inbound"),
];

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// An HTML response with the console's security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    response
}

fn nav(section: &str) -> String {
    NAV.iter()
        .map(|(id, href, label)| {
            let current = if *id == section {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(r#"<li><a href="{href}"{current}>{label}</a></li>"#)
        })
        .collect()
}

/// The page, or a redirect to the login form without a live session.
pub async fn render(
    State(console): State<Console>,
    headers: HeaderMap,
    page: &'static Page,
) -> Response {
    let signed_in = match session::token(&headers) {
        Some(t) => console.sessions.touch(t).await,
        None => false,
    };
    if !signed_in {
        return Redirect::to("/console/login").into_response();
    }
    let scripts: String = page
        .scripts
        .iter()
        .map(|s| format!(r#"<script src="/console/assets/{s}.js" defer></script>"#))
        .collect();
    let body = SHELL
        .replace("{{title}}", page.title)
        .replace("{{scripts}}", &scripts)
        .replace("{{nav}}", &nav(page.section))
        .replace("{{main}}", page.main);
    html(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_its_scripts_and_a_heading() {
        for page in PAGES {
            assert!(page.main.contains("<h1"), "{}", page.path);
            assert!(!page.scripts.is_empty(), "{}", page.path);
            for script in page.scripts {
                assert!(
                    super::super::assets::find(&format!("{script}.js")).is_some(),
                    "{script}"
                );
            }
        }
    }

    #[test]
    fn nav_marks_the_current_section() {
        let n = nav("plugins");
        assert!(n.contains(r#"href="/console/plugins" aria-current="page""#));
        assert_eq!(n.matches("aria-current").count(), 1);
    }
}
