//! The web console under `/console`: create, edit and delete element
//! instances, switch their events and rotate their signature keys, watch
//! plugins load and reload, follow events and their deliveries, and replay
//! them, from a browser.
//!
//! Everything it needs is inside the binary: small server-rendered HTML
//! shells and a little plain JavaScript and CSS, embedded with
//! `include_str!` (no build step, no CDN, no second server). The pages hold
//! no data; their scripts call the same JSON management API as any client.
//!
//! Signing in: a browser cannot put `Authorization: User …, Organization …`
//! on a page navigation, so `/console/login` asks for the two secrets once,
//! checks them in constant time ([`crate::api::auth::Credentials::matches`])
//! and answers with a session cookie (`HttpOnly`, `SameSite=Strict`, a random
//! token kept in the store with an expiry, so every replica knows it;
//! see [`session`]). The management
//! API accepts that cookie in place of the header: [`session::recognize`]
//! marks such requests authenticated, and the API's own check lets marked
//! requests through. Requests that change state must also carry the
//! `X-Plugboard-Console` header — the defence against cross-site request
//! forgery described in [`session`]. The secrets never reach the page's
//! JavaScript, and the cookie never reaches it either.

mod assets;
mod login;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

use crate::api::auth::Credentials;
use crate::store::Store;
use session::Sessions;

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    /// The management credentials a login must present.
    credentials: Arc<Credentials>,
    /// The sessions, kept in the store.
    sessions: Sessions,
}

/// Adds the console's routes to `app` and lets console sessions call the
/// management API routes `app` already has.
pub fn mount(app: Router, credentials: Arc<Credentials>, store: Store) -> Router {
    let console = Console {
        credentials,
        sessions: Sessions::new(store),
    };
    app.merge(router(console.clone()))
        .layer(axum::middleware::from_fn_with_state(
            console,
            session::recognize,
        ))
}

fn router(console: Console) -> Router {
    let mut router = Router::new()
        .route("/console", get(|| async { Redirect::to(pages::HOME) }))
        .route("/console/", get(|| async { Redirect::to(pages::HOME) }))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon));
    for page in pages::PAGES {
        router = router.route(
            page.path,
            get(move |state, headers| pages::render(state, headers, page)),
        );
    }
    router.with_state(console)
}
