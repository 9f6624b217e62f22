//! End to end in headless Chromium, as a person would use the site: sign up, read the email in
//! the development mailbox, verify, log in, book a class, log out.
//!
//! The app is the `local` binary (`cargo run`) on a free port with a fresh database (SQLite, or
//! a new PostgreSQL database when `TEST_DATABASE_URL` names a server), DEBUG on and the console
//! mailer. Chromium is driven through chromedriver's WebDriver API. Debian's `chromium` and
//! `chromium-driver` are not on a fresh machine, so the test is ignored by `cargo test`;
//! `scripts/browser-test.sh` installs them when missing and runs it.
//!
//! Any failing step saves a screenshot, the URL and the HTML of the page the browser was on to
//! `$BROWSER_FAILURES_DIR` (default: `browser-failures/` in Cargo's target tmp directory) and
//! names them in the panic message, with the end of the app's log.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use futures_util::FutureExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use shared::testing::TestDb;

const STAFF: &str = "staff@example.com";
const VISITOR: &str = "river.song@example.com";
const PASSWORD: &str = "a long passphrase for tests";
const CLASS: &str = "Sunrise yoga";
/// How long a page may take to show what a step waits for.
const PATIENCE: Duration = Duration::from_secs(15);

#[tokio::test]
#[ignore = "needs Debian's chromium and chromium-driver: run scripts/browser-test.sh, which \
            installs them when missing and runs `cargo test -p local --test it -- --ignored browser::`"]
async fn a_visitor_signs_up_verifies_logs_in_books_a_class_and_logs_out() {
    let app = App::start().await;
    let class_id = app.seed_a_class_with_one_upcoming_occurrence();
    let driver = Chromedriver::start();
    let browser = Browser::open(&driver, &app).await;

    browser
        .run(async {
            browser.step("a visitor signs up through the sign-up form");
            browser.go("/").await;
            browser.click(Locator::Css("nav a[href='/signup']")).await;
            browser.wait_for_path("/signup").await;
            browser.fill("#email", VISITOR).await;
            browser.fill("#password", PASSWORD).await;
            browser
                .click(Locator::Css("main form button[type=submit]"))
                .await;
            browser.wait_for_path("/signup/sent").await;
            browser.wait_for_text("Check your inbox").await;

            browser.step("the verification email is in the development mailbox");
            browser
                .follow_the_verification_link_in_the_mailbox(&app)
                .await;

            browser.step("the visitor followed the link and confirms");
            browser.wait_for_text("Confirm your address").await;
            browser
                .click(Locator::XPath(
                    "//button[normalize-space()='Verify my email address']",
                ))
                .await;
            browser.wait_for_path("/login").await;
            browser
                .wait_for_text("Your address is verified. Log in to continue.")
                .await;
            let token = app.api_token(VISITOR);
            let (status, me) = app.api("GET", "/api/me", Some(&token), None);
            assert_eq!(status, 200, "{me}");
            assert_eq!(me["is_verified"], true, "the API agrees: {me}");

            browser.step("the visitor logs in through the login form");
            browser.fill("#email", VISITOR).await;
            browser.fill("#password", PASSWORD).await;
            browser
                .click(Locator::Css("main form button[type=submit]"))
                .await;
            browser.wait_for_path("/account").await;
            browser.wait_for_text(VISITOR).await;
            browser.wait_for_text("Log out").await;

            browser.step("the visitor opens the class from the list");
            browser.click(Locator::Css("nav a[href='/classes']")).await;
            browser.wait_for_path("/classes").await;
            browser.click(Locator::LinkText(CLASS)).await;
            browser.wait_for_path(&format!("/classes/{class_id}")).await;
            browser.wait_for_text("12 of 12 places left").await;

            browser.step("the visitor books it");
            browser
                .click(Locator::Css("form[action$='/book'] button[type=submit]"))
                .await;
            browser.wait_for_path(&format!("/classes/{class_id}")).await;
            browser.wait_for_text("You are booked.").await;
            browser.wait_for_text("11 of 12 places left").await;
            let badge = browser
                .find(Locator::Css("form[action$='/cancel'] span"))
                .await;
            assert_eq!(browser.text_of(&badge).await, "booked");
            let (status, bookings) = app.api("GET", "/api/bookings", Some(&token), None);
            assert_eq!(status, 200, "{bookings}");
            assert_eq!(bookings["count"], 1, "the API agrees: {bookings}");
            assert_eq!(bookings["results"][0]["class_id"], class_id, "{bookings}");

            browser.step("My bookings lists the booking");
            browser.click(Locator::Css("nav a[href='/bookings']")).await;
            browser.wait_for_path("/bookings").await;
            browser.wait_for_text("My bookings").await;
            let listed = browser.find(Locator::Css("main li a")).await;
            assert_eq!(browser.text_of(&listed).await, CLASS);

            browser.step("the visitor logs out");
            browser
                .click(Locator::XPath("//nav//button[normalize-space()='Log out']"))
                .await;
            browser.wait_for_path("/login").await;
            browser.wait_for_text("You are logged out.").await;
            browser.wait_for_no_text(VISITOR).await;

            browser.step("a protected page now sends the visitor to the login page");
            browser.go("/bookings").await;
            browser.wait_for_path("/login").await;
            let url = browser.url().await;
            assert_eq!(
                url.query_pairs()
                    .find(|(k, _)| k == "next")
                    .map(|(_, v)| v.into_owned()),
                Some("/bookings".to_owned()),
                "the login page brings the visitor back afterwards: {url}"
            );
        })
        .await;
    browser.close().await;
}

/// A phone's width in CSS pixels (an iPhone 12 to 15).
const PHONE_WIDTH: i64 = 390;

#[tokio::test]
#[ignore = "needs Debian's chromium and chromium-driver: run scripts/browser-test.sh, which \
            installs them when missing and runs `cargo test -p local --test it -- --ignored browser::`"]
async fn on_a_phone_no_page_scrolls_sideways_and_the_menu_opens() {
    let app = App::start().await;
    let class_id = app.seed_a_class_with_one_upcoming_occurrence();
    let token = app.api_token(STAFF);
    let (status, me) = app.api("GET", "/api/me", Some(&token), None);
    assert_eq!(status, 200, "{me}");
    let staff_id = id_of(&me);
    let (status, occurrences) = app.api(
        "GET",
        &format!("/api/classes/{class_id}/occurrences"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{occurrences}");
    let occurrence = id_of(&occurrences["results"][0]);
    let (status, booking) = app.api(
        "POST",
        &format!("/api/occurrences/{occurrence}/booking"),
        Some(&token),
        None,
    );
    assert_eq!(status, 201, "{booking}");
    let driver = Chromedriver::start();
    let browser = Browser::open(&driver, &app).await;

    browser
        .run(async {
            browser.step("the window is a phone's width");
            browser.go("/").await;
            browser.use_phone_width().await;

            browser.step("a visitor asks for a reset link (an email in the outbox)");
            browser.go("/password-reset").await;
            browser.fill("#email", STAFF).await;
            browser
                .click(Locator::Css("main form button[type=submit]"))
                .await;
            browser.wait_for_path("/password-reset/sent").await;

            browser.step("no page a visitor sees scrolls sideways");
            let class_page = format!("/classes/{class_id}");
            for path in [
                "/",
                "/classes",
                class_page.as_str(),
                "/login",
                "/signup",
                "/signup/sent",
                "/password-reset",
                "/password-reset/sent",
                "/password-reset/confirm?token=no-such-token",
                "/verify-email?token=no-such-token",
                "/_dev/mail",
                "/docs/api",
                "/no-such-page",
            ] {
                browser.assert_fits_a_phone(path).await;
            }

            browser.step("the menu opens on a phone and leads to the login page");
            browser.go("/").await;
            browser.open_the_menu().await;
            browser
                .click(Locator::Css("details.nav-menu a[href='/login']"))
                .await;
            browser.wait_for_path("/login").await;

            browser.step("the superuser logs in on a phone");
            browser.fill("#email", STAFF).await;
            browser.fill("#password", PASSWORD).await;
            browser
                .click(Locator::Css("main form button[type=submit]"))
                .await;
            browser.wait_for_path("/account").await;

            browser.step("the superuser runs a job (an entry in the action log)");
            browser.go("/admin/jobs/process-occurrences").await;
            browser
                .click(Locator::Css(
                    "form[action='/admin/jobs/process-occurrences/run'] button",
                ))
                .await;
            browser.wait_for_text("process-occurrences").await;

            browser.step("no page a signed-in superuser sees scrolls sideways");
            browser.go("/_dev/mail").await;
            let email = browser.find(Locator::Css("main li[id^='email-']")).await;
            let email_id = email
                .attr("id")
                .await
                .unwrap()
                .unwrap_or_default()
                .trim_start_matches("email-")
                .to_owned();
            for path in [
                "/".to_owned(),
                "/classes".to_owned(),
                format!("/classes/{class_id}"),
                format!("/classes/{class_id}/edit"),
                "/classes/new".to_owned(),
                "/bookings".to_owned(),
                "/account".to_owned(),
                "/_dev/mail".to_owned(),
                "/password-reset/confirm?token=no-such-token".to_owned(),
                "/no-such-page".to_owned(),
                "/admin".to_owned(),
                "/admin/users".to_owned(),
                format!("/admin/users/{staff_id}"),
                "/admin/emails".to_owned(),
                format!("/admin/emails/{email_id}"),
                "/admin/classes".to_owned(),
                format!("/admin/classes/{class_id}"),
                "/admin/jobs".to_owned(),
                "/admin/jobs/process-occurrences".to_owned(),
                "/admin/dead-letters".to_owned(),
                "/admin/log".to_owned(),
            ] {
                browser.assert_fits_a_phone(&path).await;
            }

            browser.step("the menu opens on a phone and shows Log out");
            browser.go("/account").await;
            browser.open_the_menu().await;
            browser
                .assert_fits_a_phone_as_it_is("/account with the menu open")
                .await;
            let log_out = browser
                .find(Locator::XPath(
                    "//details[contains(@class,'nav-menu')]//button[normalize-space()='Log out']",
                ))
                .await;
            assert!(
                log_out.is_displayed().await.unwrap(),
                "Log out is in the open menu"
            );
            log_out.click().await.unwrap();
            browser.wait_for_path("/login").await;
            browser.wait_for_text("You are logged out.").await;
        })
        .await;
    browser.close().await;
}

// ---- The app ---------------------------------------------------------------------------------

/// The `local` binary serving on a free port; killed on drop.
struct App {
    site: String,
    port: u16,
    log: PathBuf,
    server: Killed,
    db: TestDb,
    dir: tempfile::TempDir,
}

impl App {
    /// Migrates a fresh database, creates the staff user and starts serving.
    async fn start() -> Self {
        let db = TestDb::empty().await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("app.log");
        let mut app = Self {
            site: format!("http://127.0.0.1:{port}"),
            port,
            log,
            server: Killed::none(),
            db,
            dir,
        };
        for args in [&["migrate"][..], &["createsuperuser", "--email", STAFF]] {
            let out = app.command(args).output().unwrap();
            assert!(
                out.status.success(),
                "local {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = std::fs::File::create(&app.log).unwrap();
        let child = app
            .command(&[])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        app.server = Killed::process(child);
        app.wait_until_serving();
        app
    }

    /// The binary as `cargo run` would run it locally, with nothing but what the test gives it.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", self.dir.path())
            .env("DATABASE_URL", self.db.config.url.expose())
            .env("DEBUG", "true")
            .env("EMAIL_BACKEND", "console")
            .env("PORT", self.port.to_string())
            .env("SUPERUSER_PASSWORD", PASSWORD)
            .env("LOG_LEVEL", "info")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.server.exited() {
                panic!("the app exited with {status}:\n{}", self.log_tail());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.api("GET", "/healthz", None, None).0 == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not answer /healthz within 60 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Seeding is not under test: the staff user's API token creates the class. Returns its id.
    fn seed_a_class_with_one_upcoming_occurrence(&self) -> String {
        let token = self.api_token(STAFF);
        let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
        let (status, class) = self.api(
            "POST",
            "/api/classes",
            Some(&token),
            Some(json!({
                "title": CLASS,
                "description": "Gentle stretches to start the day.",
                "location": "Studio 1",
                "starts_at": format!("{tomorrow}T07:30:00Z"),
                "duration_minutes": 60,
                "capacity": 12,
                "recurrence": "none",
            })),
        );
        assert_eq!(status, 201, "{class}");
        let id = class["id"].as_str().unwrap().to_owned();
        let (status, occurrences) = self.api(
            "GET",
            &format!("/api/classes/{id}/occurrences"),
            Some(&token),
            None,
        );
        assert_eq!(status, 200, "{occurrences}");
        assert_eq!(occurrences["count"], 1, "{occurrences}");
        id
    }

    fn api_token(&self, email: &str) -> String {
        let body = json!({ "email": email, "password": PASSWORD });
        let (status, answer) = self.api("POST", "/api/auth/token", None, Some(body));
        assert_eq!(status, 201, "a token for {email}: {answer}");
        answer["token"].as_str().unwrap().to_owned()
    }

    /// One HTTP/1.1 request to the JSON API; the status and the JSON answer (or the text).
    fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, Value::Null);
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let text = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        (status, value)
    }

    /// The last lines the app printed, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

// ---- chromedriver and the browser ------------------------------------------------------------

/// chromedriver on a free port, in its own process group so that Chromium goes with it.
struct Chromedriver {
    url: String,
    _process: Killed,
}

impl Chromedriver {
    /// Starts chromedriver (`$CHROMEDRIVER`, default `chromedriver` on the PATH); fails the test
    /// with one clear message when it cannot be started: this test never skips.
    fn start() -> Self {
        use std::os::unix::process::CommandExt as _;
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let cannot = "chromedriver could not be started; scripts/browser-test.sh installs \
                      Debian's chromium and chromium-driver and runs this test";
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{cannot} ({program}: {e})"));
        let mut process = Killed::group(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = process.exited() {
                panic!("{cannot} ({program} exited with {status})");
            }
            assert!(
                Instant::now() < deadline,
                "{cannot} ({program} did not listen within 20 s)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            url: format!("http://127.0.0.1:{port}"),
            _process: process,
        }
    }
}

struct Browser {
    client: Client,
    site: String,
    /// What the test is doing, for the failure message and the screenshot's name.
    step: Mutex<String>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A new headless Chromium session, with the flags that work as root on a closed network.
    async fn open(driver: &Chromedriver, app: &App) -> Self {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium ({chromium}): {e}"));
        Self {
            client,
            site: app.site.clone(),
            step: Mutex::new("starting".into()),
            log: app.log.clone(),
            _profile: profile,
        }
    }

    /// Runs the scenario; a failure (a panic or a step that hangs) saves what the browser
    /// shows and fails the test with where it is.
    async fn run(&self, scenario: impl Future<Output = ()>) {
        let outcome = tokio::time::timeout(
            Duration::from_secs(180),
            AssertUnwindSafe(scenario).catch_unwind(),
        )
        .await;
        let problem = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(panic)) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".into()),
            Err(_) => "the scenario did not finish within 180 s".into(),
        };
        let step = self.step.lock().unwrap().clone();
        let saved = self.save_page(&step).await;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        panic!("step \"{step}\" failed: {problem}\n{saved}\nthe app's log ends with:\n{tail}");
    }

    fn step(&self, what: &str) {
        *self.step.lock().unwrap() = what.to_owned();
    }

    /// Saves a PNG of the page, its URL and its HTML; says where (or why not).
    async fn save_page(&self, step: &str) -> String {
        let dir = std::env::var_os("BROWSER_FAILURES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failures"));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            return format!("no screenshot: cannot create {}: {e}", dir.display());
        }
        let seconds = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let slug: String = step
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let base = dir.join(format!("{seconds}-{slug}"));
        let mut notes = Vec::new();
        match self.client.current_url().await {
            Ok(url) => {
                notes.push(format!("page: {url}"));
                write_or_note(
                    &base.with_extension("url.txt"),
                    format!("{url}\n"),
                    &mut notes,
                );
            }
            Err(e) => notes.push(format!("no URL: {e}")),
        }
        match self.client.screenshot().await {
            Ok(png) => write_or_note(&base.with_extension("png"), &png, &mut notes),
            Err(e) => notes.push(format!("no screenshot: {e}")),
        }
        match self.client.source().await {
            Ok(html) => write_or_note(&base.with_extension("html"), &html, &mut notes),
            Err(e) => notes.push(format!("no HTML: {e}")),
        }
        notes.join("\n")
    }

    async fn close(self) {
        self.client.close().await.ok();
    }

    // -- What a person does

    async fn go(&self, path: &str) {
        let url = format!("{}{path}", self.site);
        self.goto_url(&url).await;
    }

    async fn goto_url(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    async fn find(&self, locator: Locator<'_>) -> Element {
        let shown = format!("{locator:?}");
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("no {shown} on the page: {e}"))
    }

    async fn click(&self, locator: Locator<'_>) {
        let shown = format!("{locator:?}");
        self.find(locator)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {shown}: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(Locator::Css(css)).await;
        field.clear().await.ok();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn text_of(&self, element: &Element) -> String {
        element.text().await.unwrap().trim().to_owned()
    }

    async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// The text a person sees on the page.
    async fn visible_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.url().await;
            if url.path() == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected to arrive at {path}, still at {url}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_text(&self, text: &str) {
        self.wait_until_shown(text, true).await;
    }

    async fn wait_for_no_text(&self, text: &str) {
        self.wait_until_shown(text, false).await;
    }

    async fn wait_until_shown(&self, text: &str, shown: bool) {
        let deadline = Instant::now() + PATIENCE;
        while self.visible_text().await.contains(text) != shown {
            let state = if shown {
                "does not show"
            } else {
                "still shows"
            };
            assert!(
                Instant::now() < deadline,
                "the page at {} {state} {text:?}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes the page a phone's width (the window is a little wider than its page).
    async fn use_phone_width(&self) {
        let mut width = PHONE_WIDTH;
        for _ in 0..3 {
            self.client
                .set_window_size(width as u32, 844)
                .await
                .unwrap_or_else(|e| panic!("resize the window: {e}"));
            let inner = self.script("return window.innerWidth;").await;
            let inner = inner.as_i64().unwrap_or_default();
            if inner == PHONE_WIDTH {
                return;
            }
            width += PHONE_WIDTH - inner;
        }
        panic!("the page could not be made {PHONE_WIDTH} px wide");
    }

    async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    /// Opens `path` and fails, naming it, if the page is wider than the phone.
    async fn assert_fits_a_phone(&self, path: &str) {
        self.go(path).await;
        self.find(Locator::Css("footer")).await;
        self.assert_fits_a_phone_as_it_is(path).await;
    }

    async fn assert_fits_a_phone_as_it_is(&self, page: &str) {
        let widths = self
            .script(
                "return [document.documentElement.scrollWidth, window.innerWidth, \
                 location.pathname + location.search];",
            )
            .await;
        let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert_eq!(inner, PHONE_WIDTH, "{page}: the window is {inner} px wide");
        assert!(
            scroll <= inner,
            "{page} (at {}) scrolls sideways on a phone: {scroll} px wide in a {inner} px window",
            widths[2]
        );
    }

    /// Opens the navigation's menu, as on a phone, where the links are folded into it.
    async fn open_the_menu(&self) {
        let row = self
            .find(Locator::Css("header nav a[href='/classes']"))
            .await;
        assert!(
            !row.is_displayed().await.unwrap(),
            "on a phone the navigation's links are in the menu, not in a row"
        );
        self.click(Locator::Css("details.nav-menu summary")).await;
        let classes = self
            .find(Locator::Css("details.nav-menu a[href='/classes']"))
            .await;
        assert!(
            classes.is_displayed().await.unwrap(),
            "the open menu shows the links"
        );
    }

    /// Opens `/_dev/mail` until the visitor's verification email shows as sent (the in-process
    /// worker sends it just after the sign-up), and clicks the link in it.
    async fn follow_the_verification_link_in_the_mailbox(&self, app: &App) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.go("/_dev/mail").await;
            self.wait_for_text("Development mailbox").await;
            let emails = self
                .client
                .find_all(Locator::Css("main li[id^='email-']"))
                .await
                .unwrap();
            for email in emails {
                let text = email.text().await.unwrap_or_default();
                if !(text.contains(VISITOR) && text.contains("Confirm your email address")) {
                    continue;
                }
                let status = email.find(Locator::Css("span")).await.unwrap();
                if self.text_of(&status).await != "sent" {
                    break;
                }
                let prefix = format!("{}/verify-email?token=", app.site);
                let link = email
                    .find(Locator::Css("a.email-link"))
                    .await
                    .unwrap_or_else(|_| panic!("no link to click in the email:\n{text}"));
                let href = link.attr("href").await.unwrap().unwrap_or_default();
                assert!(href.starts_with(&prefix), "the email links to {href}");
                link.click().await.unwrap();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no sent verification email to {VISITOR} in the mailbox"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

// ---- Processes --------------------------------------------------------------------------------

/// A child process ended on drop, panics included; with `group`, its whole process group
/// (chromedriver leads one, so the Chromium it started goes too).
struct Killed(Option<(Child, bool)>);

impl Killed {
    fn none() -> Self {
        Self(None)
    }

    fn process(child: Child) -> Self {
        Self(Some((child, false)))
    }

    fn group(child: Child) -> Self {
        Self(Some((child, true)))
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0
            .as_mut()
            .and_then(|(c, _)| c.try_wait().ok().flatten())
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some((mut child, group)) = self.0.take() {
            if group {
                Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status()
                    .ok();
            }
            child.kill().ok();
            child.wait().ok();
        }
    }
}

fn write_or_note(path: &Path, contents: impl AsRef<[u8]>, notes: &mut Vec<String>) {
    match std::fs::write(path, contents) {
        Ok(()) => notes.push(format!("saved {}", path.display())),
        Err(e) => notes.push(format!("could not write {}: {e}", path.display())),
    }
}

/// A resource's `id` as text (ids are strings or numbers, as the schema chooses).
fn id_of(resource: &Value) -> String {
    match &resource["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
