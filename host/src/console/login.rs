//! Signing in to and out of the console.
//!
//! `POST /console/login` takes the user and organization secrets as a form,
//! compares them in constant time with the management credentials, and on a
//! match starts a session and sets its cookie. A wrong pair is answered
//! after a short pause, with the form again and a message that does not say
//! which secret was wrong. `POST /console/logout` ends the session.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{html, HOME};
use super::{session, Console};

const PAGE: &str = include_str!("assets/pages/login.html");

/// Pause before answering a wrong pair of secrets.
const FAILURE_PAUSE: Duration = Duration::from_millis(300);

fn page(status: StatusCode, error: Option<&'static str>) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert" id="login-error">{e}</p>"#))
        .unwrap_or_default();
    html(status, PAGE.replace("{{error}}", &error))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// `GET /console/login`: the form, or home when already signed in.
pub async fn form(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Some(t) = session::token(&headers) {
        if console.sessions.touch(t).await {
            return Redirect::to(HOME).into_response();
        }
    }
    page(StatusCode::OK, None)
}

/// `POST /console/login` with `user` and `organization` form fields.
pub async fn submit(State(console): State<Console>, headers: HeaderMap, body: Bytes) -> Response {
    if session::cross_origin(&headers) {
        return page(
            StatusCode::FORBIDDEN,
            Some("Sign in from the console's own page."),
        );
    }
    let (mut user, mut organization) = (String::new(), String::new());
    for (name, value) in url::form_urlencoded::parse(&body) {
        match name.as_ref() {
            "user" => user = value.into_owned(),
            "organization" => organization = value.into_owned(),
            _ => {}
        }
    }
    if !console.credentials.matches(&user, &organization) {
        tracing::warn!("console login refused");
        tokio::time::sleep(FAILURE_PAUSE).await;
        return page(
            StatusCode::UNAUTHORIZED,
            Some("Those secrets are not the management credentials."),
        );
    }
    let Some(token) = console.sessions.open().await else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The session could not be stored; try again in a moment."),
        );
    };
    tracing::info!("console login");
    with_cookie(
        Redirect::to(HOME).into_response(),
        &session::set_cookie(&token),
    )
}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Some(t) = session::token(&headers) {
        console.sessions.close(t).await;
    }
    with_cookie(
        Redirect::to("/console/login").into_response(),
        &session::clear_cookie(),
    )
}
