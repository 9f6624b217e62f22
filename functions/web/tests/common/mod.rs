//! The test harness shared by the web tests: the router built exactly as the Lambda and the
//! local server build it, on a fresh database, driven in process.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use shared::config::{Config, DatabaseConfig, DatabaseKind, Profile, Secret, Vars};
use shared::db::Db;
use shared::queue::{LocalMessage, Queue};
use shared::testing::TestDb;
use tokio::sync::mpsc::UnboundedReceiver;
use tower::ServiceExt as _;

pub struct TestApp {
    pub router: Router,
    /// The messages the app queued for the worker.
    pub queued: UnboundedReceiver<LocalMessage>,
    pub db: Option<TestDb>,
    pub dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

pub fn local_config(dir: &std::path::Path) -> Config {
    Config::from_vars(
        &Profile::Local {
            data_dir: dir.to_path_buf(),
        },
        &Vars::default(),
    )
    .unwrap()
}

impl TestApp {
    /// The app on a fresh, migrated database, with DEBUG on as `cargo run` has it.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::with_config(local_config(dir.path()), dir).await
    }

    /// With DEBUG off and these variables over the production set.
    pub async fn with_vars(extra: &[(&'static str, &'static str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = shared::testing::production_vars();
        vars.extend_from_slice(extra);
        let config = Config::from_vars(
            &Profile::Local {
                data_dir: dir.path().to_path_buf(),
            },
            &Vars::from_pairs(vars),
        )
        .unwrap();
        Self::with_config(config, dir).await
    }

    /// With a production configuration (DEBUG off).
    pub async fn production() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_vars(
            &Profile::Local {
                data_dir: dir.path().to_path_buf(),
            },
            &Vars::from_pairs(shared::testing::production_vars()),
        )
        .unwrap();
        Self::with_config(config, dir).await
    }

    pub async fn with_config(config: Config, dir: tempfile::TempDir) -> Self {
        let db = TestDb::new().await;
        let (queue, queued) = Queue::local();
        let state = web::AppState::new(config, db.db.clone(), queue).unwrap();
        Self {
            router: web::router(state),
            queued,
            db: Some(db),
            dir,
        }
    }

    /// The app with a database that refuses connections.
    pub fn with_database_down() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect_lazy(&DatabaseConfig {
            url: Secret::new("postgres://nobody@127.0.0.1:1/none"),
            kind: DatabaseKind::Postgres,
            max_connections: 1,
        })
        .unwrap();
        let (queue, queued) = Queue::local();
        let state = web::AppState::new(local_config(dir.path()), db, queue).unwrap();
        Self {
            router: web::router(state),
            queued,
            db: None,
            dir,
        }
    }

    /// A request as a browser or client sends it: with `Host: localhost` unless `headers` name
    /// another host.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(method, path, headers, Body::empty()).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header(header::HOST, "localhost");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[]).await
    }
}
