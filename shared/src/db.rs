//! One database handle for SQLite (local) and PostgreSQL (AWS), chosen by the URL.
//!
//! Each query is written once, in `store/`, and compiled for both drivers by [`on_conn!`]:
//! the macro expands the same body once per backend, so the compiler checks every query's Rust
//! types against both. Why native drivers rather than sqlx's `Any` driver: `Any` cannot carry
//! `timestamptz`, `uuid` or `boolean`, which a sound PostgreSQL schema wants (docs/database.md).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::config::{CaBundle, CredentialSource, DatabaseConfig, DatabaseKind};

/// The migrations in `migrations/`, embedded in every binary. They run on both backends.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Amazon RDS's certificate authorities (every region's roots, from AWS's global bundle; how
/// to refresh it: `shared/certs/README.md`).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// A pool for one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
    /// The pool, and what renews its credentials when the server refuses them.
    Postgres(PgPool, Option<Arc<Renewal>>),
}

/// A pool's [`CredentialSource`], and when it was last asked (so a password that stays wrong
/// costs one secret read per [`Renewal::MIN_INTERVAL`], not one per request).
#[derive(Debug)]
pub struct Renewal {
    source: Arc<dyn CredentialSource>,
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Renewal {
    const MIN_INTERVAL: Duration = Duration::from_secs(10);

    /// Asks the source for credentials and gives them to the pool's next connections. False
    /// when it was asked too recently or could not answer (then the refusal stands).
    async fn renew(&self, pool: &PgPool) -> bool {
        let mut last = self.last.lock().await;
        if last.is_some_and(|at| at.elapsed() < Self::MIN_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        match self.source.credentials().await {
            Ok(credentials) => {
                let options = (*pool.connect_options())
                    .clone()
                    .username(&credentials.username)
                    .password(credentials.password.expose());
                pool.set_connect_options(options);
                tracing::warn!(
                    "the database refused the password; re-read the secret and reconnecting"
                );
                true
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the database refused the password and the secret could not be re-read"
                );
                false
            }
        }
    }
}

/// PostgreSQL's answer to a wrong password (`invalid_password`) or an unknown user
/// (`invalid_authorization_specification`).
fn is_refused_password(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("28P01" | "28000")))
}

/// A transaction on either backend. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A pooled connection on either backend, for work outside a transaction.
pub enum PooledConn {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

/// A borrowed connection: what store functions run their queries on.
pub enum Conn<'c> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// Anything a store function can run on: a transaction or a pooled connection.
pub trait Exec: Send {
    fn conn(&mut self) -> Conn<'_>;
}

/// Statements run through [`on_conn!`] by this process: one per database round trip, which
/// the worker benchmark reports per batch.
static STATEMENTS: AtomicU64 = AtomicU64::new(0);

pub fn statements_run() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

impl Exec for Tx {
    fn conn(&mut self) -> Conn<'_> {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
            Tx::Postgres(tx) => Conn::Postgres(tx),
        }
    }
}

impl Exec for PooledConn {
    fn conn(&mut self) -> Conn<'_> {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
        match self {
            #[cfg(feature = "sqlite")]
            PooledConn::Sqlite(c) => Conn::Sqlite(c),
            PooledConn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs `$body` with `$c` bound to the backend's `&mut Connection`, once per backend.
///
/// Both arms must produce the same type: map driver-specific results (`execute` returns a
/// per-backend `QueryResult`) to plain values inside the body.
///
/// ```ignore
/// on_conn!(exec, |c| sqlx::query("delete from sessions where expires_at < $1")
///     .bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))
/// ```
#[cfg(feature = "sqlite")]
#[macro_export]
macro_rules! on_conn {
    ($exec:expr, |$c:ident| $body:expr) => {
        match $crate::db::Exec::conn($exec) {
            $crate::db::Conn::Sqlite($c) => $body,
            $crate::db::Conn::Postgres($c) => $body,
        }
    };
}

/// [`on_conn!`] in a build without SQLite (the Lambda binaries). Two definitions because a
/// `#[cfg]` inside a macro's expansion would be read with the calling crate's features.
#[cfg(not(feature = "sqlite"))]
#[macro_export]
macro_rules! on_conn {
    ($exec:expr, |$c:ident| $body:expr) => {
        match $crate::db::Exec::conn($exec) {
            $crate::db::Conn::Postgres($c) => $body,
        }
    };
}

/// Runs a statement (a `sqlx::query(..)` with its binds) on both backends through
/// [`on_conn!`] and returns the number of rows it affected.
///
/// ```ignore
/// execute!(exec, sqlx::query("delete from sessions where user_id = $1").bind(id))?;
/// ```
#[macro_export]
macro_rules! execute {
    ($exec:expr, $query:expr) => {
        $crate::on_conn!($exec, |conn| $query
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected()))
    };
}

impl Db {
    /// Builds the pool without connecting: the first query connects. Lambda init stays fast
    /// and a database that is down at start-up answers 503 later instead of crashing.
    pub fn connect_lazy(config: &DatabaseConfig) -> anyhow::Result<Self> {
        let url = config.url.expose();
        match config.kind {
            #[cfg(not(feature = "sqlite"))]
            DatabaseKind::Sqlite => anyhow::bail!(
                "DATABASE_URL names a SQLite database, but this binary is built without SQLite \
                 (shared's `sqlite` feature, which the local runner and the tests turn on): \
                 use a postgres:// URL"
            ),
            #[cfg(feature = "sqlite")]
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid SQLite URL")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(config.acquire_timeout);
                if let Some(dir) = options.get_filename().parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("creating the SQLite directory {}", dir.display())
                    })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.acquire_timeout)
                    // sqlx pings a connection at every acquire by default (a round trip to the
                    // connection's worker thread per request); a file opened by this process
                    // cannot be closed under it by a server, so there is nothing to detect.
                    .test_before_acquire(false)
                    .connect_lazy_with(options);
                Ok(Self::Sqlite(pool))
            }
            DatabaseKind::Postgres => {
                let mut options = PgConnectOptions::from_str(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?
                    .application_name("serverless-starter");
                // With a CA bundle, TLS is required and the certificate must be signed by it
                // and name the host: a server that cannot prove it is the database is refused.
                // (sqlx adds the bundle to the public roots it trusts anyway.)
                match &config.ca_bundle {
                    None => {}
                    Some(CaBundle::Rds) => {
                        options = options
                            .ssl_mode(PgSslMode::VerifyFull)
                            .ssl_root_cert_from_pem(RDS_CA_BUNDLE.to_vec());
                    }
                    Some(CaBundle::File(path)) => {
                        options = options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(path);
                    }
                }
                let last_release = Arc::new(AtomicU64::new(0));
                let released = last_release.clone();
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .min_connections(0)
                    .acquire_timeout(config.acquire_timeout)
                    // Instead of sqlx's ping at every acquire: see `needs_ping`.
                    .test_before_acquire(false)
                    .before_acquire(move |conn, meta| {
                        let ping = needs_ping(meta.idle_for, &last_release);
                        Box::pin(async move {
                            // A connection that fails its ping is closed; the pool opens
                            // another in its place.
                            Ok(!ping || sqlx::Connection::ping(conn).await.is_ok())
                        })
                    })
                    .after_release(move |_, _| {
                        released.store(wall_clock_ms(), Ordering::Relaxed);
                        Box::pin(async { Ok(true) })
                    })
                    .idle_timeout(Duration::from_secs(300))
                    .connect_lazy_with(options);
                let renewal = config.credentials.clone().map(|source| {
                    Arc::new(Renewal {
                        source,
                        last: tokio::sync::Mutex::new(None),
                    })
                });
                Ok(Self::Postgres(pool, renewal))
            }
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => DatabaseKind::Sqlite,
            Db::Postgres(..) => DatabaseKind::Postgres,
        }
    }

    /// Applies pending migrations; returns the versions applied by this call. A migration
    /// recorded in the database but unknown to this build is an error (a deleted or renamed
    /// file): see [`Db::migrate_on_deploy`] for the one place where that is expected.
    pub async fn migrate(&self) -> anyhow::Result<Vec<i64>> {
        self.run_migrator(&MIGRATOR).await
    }

    /// [`Db::migrate`] for the deploy hook, which also runs when CloudFormation rolls a
    /// failed deploy back: the previous release then finds the newer release's migrations
    /// applied and must go on without them (migrations are written to be backward compatible
    /// with the release before them) instead of failing the rollback.
    pub async fn migrate_on_deploy(&self) -> anyhow::Result<Vec<i64>> {
        let mut migrator = sqlx::migrate!("../migrations");
        migrator.set_ignore_missing(true);
        self.run_migrator(&migrator).await
    }

    async fn run_migrator(&self, migrator: &sqlx::migrate::Migrator) -> anyhow::Result<Vec<i64>> {
        self.check_reachable()
            .await
            .context("applying database migrations")?;
        let before = self.applied_migrations().await.unwrap_or_default();
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => migrator.run(pool).await,
            Db::Postgres(pool, _) => migrator.run(pool).await,
        }
        // Not `.context`: sqlx's migration error already prints its cause, and the chain
        // would print it a second time.
        .map_err(|e| anyhow::anyhow!("applying database migrations: {e}"))?;
        let after = self.applied_migrations().await?;
        Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
    }

    /// Versions recorded in sqlx's `_sqlx_migrations` table (empty on a new database).
    pub async fn applied_migrations(&self) -> anyhow::Result<Vec<i64>> {
        let mut conn = self.acquire().await?;
        on_conn!(&mut conn, |c| {
            sqlx::query_scalar::<_, i64>(
                "select version from _sqlx_migrations where success order by version",
            )
            .fetch_all(&mut *c)
            .await
        })
        .context("reading applied migrations")
    }

    /// A connection from the pool.
    pub async fn acquire(&self) -> Result<PooledConn, sqlx::Error> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Db::Postgres(pool, renewal) => {
                PooledConn::Postgres(renewing(pool, renewal, || pool.acquire()).await?)
            }
        })
    }

    /// Starts a transaction. On SQLite it takes the write lock up front (`begin immediate`),
    /// so two writers queue on the busy timeout instead of failing with "database is locked"
    /// when a read transaction tries to upgrade.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("begin immediate").await?),
            Db::Postgres(pool, renewal) => {
                Tx::Postgres(renewing(pool, renewal, || pool.begin()).await?)
            }
        })
    }

    /// Opens a connection (or takes a pooled one), or fails with one line that names the server
    /// and why it could not be reached. The pool's own error says only "pool timed out while
    /// waiting for an open connection" (sqlx keeps the cause of the failed connects to itself),
    /// so on PostgreSQL one direct connection attempt, bounded by the acquire timeout, finds it.
    pub async fn check_reachable(&self) -> anyhow::Result<()> {
        let error = match self.acquire().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => Err(anyhow::anyhow!(
                "cannot open the SQLite database {}: {error}",
                pool.connect_options().get_filename().display()
            )),
            Db::Postgres(pool, _) => {
                let options = pool.connect_options();
                let server = format!("{}:{}", options.get_host(), options.get_port());
                let timeout = pool.options().get_acquire_timeout();
                let direct = <PgConnection as sqlx::Connection>::connect_with(&options);
                let cause = match tokio::time::timeout(timeout, direct).await {
                    Ok(Err(direct)) => direct.to_string(),
                    // Reachable now: the pool's failure was a passing one.
                    Ok(Ok(_)) => error.to_string(),
                    Err(_) => format!("no answer within {} s", timeout.as_secs()),
                };
                // The cause only, once: the pool's error would repeat what it says.
                Err(anyhow::anyhow!(
                    "cannot connect to PostgreSQL at {server}: {cause}"
                ))
            }
        }
    }

    /// Starts opening the pool's first connection in the background and returns at once (after
    /// letting it begin), so that a Lambda's init can go on with the rest; see
    /// [`FirstConnection::wait`] for the end of init. Lambda runs init at full speed before
    /// the first event, and with provisioned concurrency or a pre-warmed instance, long
    /// before it: the connection (on RDS a TCP and TLS handshake and authentication) is then
    /// no longer part of the first response.
    pub async fn connect_during_init(&self) -> FirstConnection {
        let db = self.clone();
        let task = tokio::spawn(async move { db.acquire().await.map(drop) });
        // On a current-thread runtime the task runs only when this one waits: let it send its
        // first packets (or start resolving the host name) before init's synchronous part.
        tokio::task::yield_now().await;
        FirstConnection(task)
    }

    /// Round trip to the database (for `/healthz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.acquire().await?;
        on_conn!(&mut conn, |c| sqlx::query("select 1")
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool, _) => pool.close().await,
        }
    }
}

/// How long the end of a Lambda's init waits for the first database connection
/// ([`FirstConnection::wait`]). A database that takes longer (one that is resuming, or down)
/// does not fail the init or hold it up for the acquire timeout: the attempt goes on in the
/// background and the first request waits for it, or answers 503 as it would have.
pub const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(1);

/// The first connection being opened during init ([`Db::connect_during_init`]).
pub struct FirstConnection(tokio::task::JoinHandle<Result<(), sqlx::Error>>);

impl FirstConnection {
    /// Waits for the connection, at most [`FIRST_CONNECTION_WAIT`]; a failure is logged, not
    /// returned: the function starts either way.
    pub async fn wait(self) {
        match tokio::time::timeout(FIRST_CONNECTION_WAIT, self.0).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(
                %error,
                "could not connect to the database during init; requests will try again"
            ),
            Ok(Err(error)) => tracing::warn!(%error, "the database connection task failed"),
            Err(_) => tracing::warn!(
                "the database did not answer within {} s of init; the first request waits for it",
                FIRST_CONNECTION_WAIT.as_secs()
            ),
        }
    }
}

/// How long a PostgreSQL connection may sit unused and still be handed out without a ping.
/// sqlx pings every connection at acquire by default: a round trip per request, 7-8 % of the
/// web function's CPU for a warm page (BENCHMARKS.md). A connection used a moment ago
/// is trusted instead (HikariCP's `aliveBypassWindowMs` does the same, with 500 ms); a server
/// that closes one within that moment (a restart, a failover) fails that one query, and the
/// pool replaces the broken connection for the next.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Whether a PostgreSQL connection idle for `idle_for` (sqlx's monotonic clock) must be pinged
/// before it is handed out, given when the pool last took one back (`last_release`, wall clock).
/// A frozen Lambda instance is the case to catch: the server may have closed its connection
/// while it was frozen, and whether the monotonic clock counts the time spent frozen is up to
/// the host, so the wall clock, which is corrected when the instance thaws, is asked as well
/// (per pool: in Lambda the pool holds one connection).
fn needs_ping(idle_for: Duration, last_release: &AtomicU64) -> bool {
    let since_release = wall_clock_ms().saturating_sub(last_release.load(Ordering::Relaxed));
    idle_for > PING_AFTER_IDLE || Duration::from_millis(since_release) > PING_AFTER_IDLE
}

fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs `op` (which opens a connection when the pool has none); when the server refuses the
/// password and there is a credential source, renews the credentials once and tries again.
async fn renewing<T, F, Fut>(
    pool: &PgPool,
    renewal: &Option<Arc<Renewal>>,
    op: F,
) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    match op().await {
        Err(e) if is_refused_password(&e) => match renewal {
            Some(renewal) if renewal.renew(pool).await => op().await,
            _ => Err(e),
        },
        result => result,
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }
}
