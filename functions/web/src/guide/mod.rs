//! The web half of the worked example that `docs/first-model.md` quotes (the other half is
//! `shared::guide`): the notes page and API, mounted the way [`crate::router`] mounts every
//! route, and driven by the web tests' own `TestApp`. The guide's `rust` code blocks for
//! `functions/web/` are checked against these files, its template is the one the page
//! renders, and its OpenAPI fragment is held to these routes.

/// `crate::pages` as a page module sees it (`super::...`).
mod pages {
    pub(crate) use crate::pages::{PageResult, SignedIn, pager};
    pub mod notes;
}
/// `crate::api` as an API module sees it.
mod api {
    pub(crate) use crate::api::{ApiUser, JsonObject};
    pub mod notes;
}

/// The web tests' harness, compiled here so the example is tested as the guide says a model
/// is tested.
#[path = "../../tests/it/common/mod.rs"]
mod common;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use shared::queue::Queue;

use crate::state::AppState;
use crate::templates::Templates;

/// The guide's one template block: `(its name, its source)`.
fn template() -> (String, String) {
    let blocks = shared::guide::blocks("html");
    assert_eq!(blocks.len(), 1, "the guide shows one template");
    let source = blocks[0].clone();
    let first = source.lines().next().unwrap_or_default();
    let name = first
        .strip_prefix("{# assets/templates/")
        .and_then(|rest| rest.strip_suffix(" #}"))
        .expect("the template block starts with {# assets/templates/<name> #}");
    (name.to_owned(), source)
}

/// [`crate::router`] with the example's page and API routes added where a real model adds
/// them (`pages::routes` and `api::routes`), and the guide's template beside the others.
fn router_with_notes(mut state: AppState) -> Router {
    state.templates = Arc::new(Templates::with_extra(
        state.config.debug,
        &state.config.site_name,
        vec![template()],
    ));
    let pages = crate::pages::routes(&state)
        .merge(pages::notes::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::session::layer,
        ));
    let routes = Router::new()
        .merge(pages)
        .merge(crate::api::routes())
        .merge(api::notes::routes())
        .fallback(crate::error::not_found);
    crate::pipeline::around(routes, state)
}

/// A `TestApp` (made by `TestApp::new`) whose router has the notes, on its database, with
/// the guide's migration applied.
async fn guide_app(mut app: common::TestApp) -> common::TestApp {
    let db = app.database().clone();
    shared::guide::apply_migration(&db).await.unwrap();
    let (queue, mut queued) = Queue::local();
    // Nothing here sends mail that a test reads; the receiver only keeps the queue open.
    tokio::spawn(async move { while queued.recv().await.is_some() {} });
    let state = AppState::new(common::local_config(app.dir.path()), db, queue);
    app.router = router_with_notes(state);
    app
}
