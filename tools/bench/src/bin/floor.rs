//! The floor the web function's figures are compared with: the same list query on the same
//! pool (`shared::store::classes::list_classes`, 20 classes with the count of all), answered
//! as a small JSON array by a bare axum route: no session, templates, security layers or
//! logs. Its `/hello` is the rung below: the same binary and runtime answering without a
//! query, so the benchmark's ladder reads runtime -> + the query -> + the app.
//!
//! Under a Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API` set) it runs as the web function does
//! (lambda_http, one thread); otherwise it serves `http://127.0.0.1:$PORT/classes` like the
//! local runner (tokio's multi-threaded runtime). `DATABASE_URL` names the seeded database.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use shared::config::{DatabaseConfig, DatabaseKind, Secret};
use shared::db::Db;

async fn classes(State(db): State<Db>) -> Result<axum::Json<Vec<String>>, StatusCode> {
    let fail = |_| StatusCode::SERVICE_UNAVAILABLE;
    let mut conn = db.acquire().await.map_err(fail)?;
    let listed = shared::store::classes::list_classes(&mut conn, 20, 0)
        .await
        .map_err(fail)?;
    Ok(axum::Json(
        listed.rows.into_iter().map(|c| c.title).collect(),
    ))
}

/// `connections`: the pool size the app has in the same place (1 in Lambda, 5 locally).
fn app(connections: u32) -> anyhow::Result<Router> {
    let url = std::env::var("DATABASE_URL")?;
    let kind = if url.starts_with("postgres") {
        DatabaseKind::Postgres
    } else {
        DatabaseKind::Sqlite
    };
    let db = Db::connect_lazy(&DatabaseConfig::new(Secret::new(url), kind, connections))?;
    Ok(Router::new()
        .route("/classes", get(classes))
        .route("/hello", get(|| async { "Hello, World!" }))
        .with_state(db))
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                lambda_http::run(app(1)?)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
    } else {
        tokio::runtime::Runtime::new()?.block_on(async {
            let port = std::env::var("PORT").unwrap_or_else(|_| "3997".into());
            let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
            axum::serve(listener, app(5)?).await?;
            Ok(())
        })
    }
}
