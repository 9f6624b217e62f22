//! The test harness shared by the web tests: the router built exactly as the Lambda and the
//! local server build it, on a fresh database, driven in process.
#![allow(dead_code)]

pub mod proxy;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use shared::config::{Config, DatabaseConfig, DatabaseKind, Profile, Secret, Vars};
use shared::db::Db;
use shared::queue::{LocalMessage, Queue};
use shared::store::emails::{self, EmailRow};
use shared::testing::TestDb;
use tokio::sync::mpsc::UnboundedReceiver;
use tower::ServiceExt as _;

pub struct TestApp {
    pub router: Router,
    /// The messages the app queued for the worker (see [`TestApp::drain_queued`]).
    queued: std::sync::Mutex<UnboundedReceiver<LocalMessage>>,
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
        let (queue, queued) = Queue::local();
        Self::with_queue(config, dir, queue, queued).await
    }

    /// With this queue for the worker (an SQS queue on the AWS emulator); `queued` receives
    /// what a local queue gets.
    pub async fn with_queue(
        config: Config,
        dir: tempfile::TempDir,
        queue: Queue,
        queued: UnboundedReceiver<LocalMessage>,
    ) -> Self {
        let db = TestDb::new().await;
        let state = web::AppState::new(config, db.db.clone(), queue);
        Self {
            router: web::router(state),
            queued: std::sync::Mutex::new(queued),
            db: Some(db),
            dir,
        }
    }

    /// The app on `db` (another pool on `test_db`'s database, e.g. through a proxy); the
    /// helpers that read the database ([`TestApp::count`]) go to `test_db` directly.
    pub fn with_pool(db: Db, test_db: TestDb) -> Self {
        Self::on(db, Some(test_db))
    }

    /// The app with a database that refuses connections.
    pub fn with_database_down() -> Self {
        let db = Db::connect_lazy(&DatabaseConfig::new(
            Secret::new("postgres://nobody@127.0.0.1:1/none"),
            DatabaseKind::Postgres,
            1,
        ))
        .unwrap();
        Self::on(db, None)
    }

    fn on(db: Db, test_db: Option<TestDb>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (queue, queued) = Queue::local();
        let state = web::AppState::new(local_config(dir.path()), db, queue);
        Self {
            router: web::router(state),
            queued: std::sync::Mutex::new(queued),
            db: test_db,
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

impl TestApp {
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Body::from(body.to_string()),
        )
        .await
    }

    /// Every email in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<EmailRow> {
        let mut conn = self.database().acquire().await.unwrap();
        let mut rows = emails::list_recent_emails(&mut conn, 1000).await.unwrap();
        rows.reverse();
        rows
    }

    /// Moves time without sleeping: runs `sql`, an update whose one parameter is a time.
    pub async fn set_time(&self, sql: &'static str, at: chrono::DateTime<chrono::Utc>) {
        let mut conn = self.database().acquire().await.unwrap();
        shared::execute!(&mut conn, sqlx::query(sql).bind(at)).unwrap();
    }

    /// A count from the database under test (`select count(*) ...`).
    pub async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = self.database().acquire().await.unwrap();
        shared::on_conn!(&mut conn, |c| {
            sqlx::query_scalar(sql).fetch_one(&mut *c).await
        })
        .unwrap()
    }

    /// The bodies of the messages queued for the worker since the last call.
    pub fn drain_queued(&self) -> Vec<String> {
        let mut queued = self.queued.lock().unwrap();
        std::iter::from_fn(|| queued.try_recv().ok())
            .map(|m| m.body)
            .collect()
    }

    pub fn database(&self) -> &Db {
        &self.db.as_ref().expect("this app has a database").db
    }
}

/// The token in the link of an email (`...?token=<64 hex>`).
pub fn token_in(row: &EmailRow) -> String {
    let start = row.body_text.find("token=").expect("a link with a token") + "token=".len();
    row.body_text[start..start + 64].to_owned()
}

/// A browser on a [`TestApp`]: keeps the session cookie and the CSRF token of the last page,
/// and posts forms with them as a browser on our own origin does.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    /// `name=value` of the session cookie, as the browser would send it back.
    pub cookie: Option<String>,
    /// The CSRF token of the last page that had a form.
    pub csrf: Option<String>,
    pub origin: String,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookie: None,
            csrf: None,
            origin: "http://localhost".to_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let cookie = self.cookie.clone();
        let mut headers = vec![("accept", "text/html")];
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie));
        }
        let reply = self.app.request(Method::GET, path, &headers).await;
        self.remember(&reply);
        reply
    }

    /// Posts a form with the CSRF token of the last page and our origin.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf.clone().expect("load a page with a form first");
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        let origin = self.origin.clone();
        self.post_raw(path, &all, &[("origin", &origin)]).await
    }

    /// Posts exactly these fields and headers (plus the cookie), for the CSRF tests.
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let cookie = self.cookie.clone();
        let mut all = vec![
            ("accept", "text/html"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        if let Some(cookie) = &cookie {
            all.push(("cookie", cookie));
        }
        all.extend_from_slice(headers);
        let reply = self
            .app
            .send(Method::POST, path, &all, Body::from(body))
            .await;
        self.remember(&reply);
        reply
    }

    fn remember(&mut self, reply: &Reply) {
        if let Some(set) = reply.headers.get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            self.cookie = Some(pair.to_owned());
        }
        let marker = "name=\"csrf_token\" value=\"";
        if let Some(i) = reply.body.find(marker) {
            let start = i + marker.len();
            let end = start + reply.body[start..].find('"').unwrap();
            self.csrf = Some(reply.body[start..end].to_owned());
        }
    }

    /// The session token in the cookie.
    pub fn session_token(&self) -> String {
        let pair = self.cookie.as_deref().expect("a session cookie");
        pair.split_once('=').unwrap().1.to_owned()
    }

    /// Signs up and logs in through the pages; returns the reply to the login.
    pub async fn log_in(&mut self, email: &str, password: &str) -> Reply {
        let form = self.get("/login").await;
        if form.status == StatusCode::SEE_OTHER {
            // Already signed in, the login page sends us on; the CSRF token is on that page.
            let to = location(&form).to_owned();
            self.get(&to).await;
        }
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }
}

/// Where a redirect goes.
pub fn location(reply: &Reply) -> &str {
    reply
        .headers
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// The password of accounts made by [`TestApp::account`].
pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    /// An account made through the JSON API with [`PASSWORD`], verified unless `verified` is
    /// false.
    pub async fn account(&self, email: &str, verified: bool) {
        let reply = self
            .post_json(
                "/api/auth/signup",
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        if verified {
            let row = self.outbox().await.pop().unwrap();
            let reply = self
                .post_json(
                    "/api/auth/verify",
                    serde_json::json!({"token": token_in(&row)}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
    }

    /// A staff account (a superuser, as `createsuperuser` makes) with [`PASSWORD`].
    pub async fn staff(&self, email: &str) {
        let email = shared::domain::EmailAddress::parse(email).unwrap();
        let password = shared::domain::Password::parse(PASSWORD, Some(&email)).unwrap();
        shared::services::accounts::create_superuser(self.database(), &email, &password)
            .await
            .unwrap();
    }

    /// A new API token for an account with [`PASSWORD`].
    pub async fn api_token(&self, email: &str, password: &str) -> String {
        let reply = self
            .post_json(
                "/api/auth/token",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.json()["token"].as_str().unwrap().to_owned()
    }

    /// A request with `Authorization: Bearer <token>` and, when given, a JSON body.
    pub async fn authed(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send(method, path, &headers, body).await
    }
}
