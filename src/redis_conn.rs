//! The one shared Redis connection (design.md §6): rate-limit budgets, login sessions and any
//! other state several BridgeCore instances must agree on go through it.
//!
//! Redis is an optimisation and a coordination point, never a dependency of serving traffic
//! (design.md §5, fail safe). So this connection:
//!
//! - **connects lazily, in the background.** Building a [`RedisConn`] does no I/O: BridgeCore
//!   starts while Redis is down. The first command (or [`RedisConn::wait_up`]) starts a
//!   connection attempt on a spawned task, so a caller that gives up (its timeout, a client
//!   that went away) does not abort the attempt for everyone else;
//! - **bounds every command** by a timeout (the constructor's, 50 ms for the limiter by
//!   default), connection wait included, so a slow or blackholed Redis costs a request at most
//!   that long;
//! - **fails fast after a failure** (a circuit breaker): a timeout, a dropped connection or a
//!   refused connection attempt opens the breaker for a back-off of 500 ms, doubling up to 2 s
//!   while failures continue. While it is open, commands return [`RedisError::Down`] at once
//!   instead of each waiting for its own timeout; once it closes, the next command makes one
//!   connection attempt (half-open), and the first success resets the back-off. A request
//!   therefore pays the timeout at most about once per back-off period during an outage;
//! - is **one multiplexed connection** (redis-rs `MultiplexedConnection`): commands from every
//!   worker thread are pipelined on one socket, cloned handles share it, and nothing here holds
//!   a lock across an `.await` (the state lock guards a few fields and is released before any
//!   I/O).
//!
//! Everything BridgeCore writes is under the [`KEY_PREFIX`] `bc:`.
//!
//! Not covered: Redis Cluster (the limiter's two-key script would need hash tags) and
//! Sentinel; `redis.url` names one server (`redis://`, `unix://`; credentials and db in the URL).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};
use tokio::sync::watch;
use tokio::time::Instant;

/// The prefix of every key BridgeCore writes, so its keys can be told apart from (and never
/// collide with) anything else in a shared Redis.
pub const KEY_PREFIX: &str = "bc:";

/// The command timeout the limiter uses unless configured otherwise: a rate-limit check sits
/// in front of every request, so a sick Redis may add at most this much latency.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The longest one background connection attempt may take. Longer than command timeouts on
/// purpose: no request waits for it (only the command that started it, up to its own
/// timeout), and a remote Redis may need more than 50 ms to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The first back-off after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest back-off: how long a recovered Redis may stay unused, at worst.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why a Redis command did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// No usable connection: Redis is unreachable, the connection dropped, or the circuit
    /// breaker is open after a recent failure. Callers fall back (local limits) or refuse
    /// (sessions); they must not retry in a loop.
    #[error("redis is unavailable")]
    Down,
    /// The command did not complete within its timeout. The breaker opens, so the next
    /// commands do not wait too.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered, but with an error or a reply of an unexpected shape (a script error, a
    /// wrong type). Redis is up; only this command failed.
    #[error("redis: {0}")]
    Protocol(String),
    /// `redis.url` could not be read (reported when the configuration is loaded).
    #[error("invalid redis url: {0}")]
    InvalidUrl(String),
}

/// The shared connection: cheap to call from any task, safe to share (`Arc<RedisConn>`).
///
/// Each user of Redis (cache, limits, sessions, change events) gets its own handle on the one
/// connection through [`RedisConn::counting`], so failed commands are counted by who failed
/// (`bridgecore_redis_errors_total{op}`).
pub struct RedisConn {
    inner: Arc<Inner>,
    errors: Option<prometheus::IntCounter>,
}

struct Inner {
    client: redis::Client,
    /// For logs: `host:port` (or the socket path), never the credentials.
    addr: String,
    timeout: Duration,
    state: Mutex<State>,
    /// Bumped after each finished connection attempt, so the command that started one can
    /// wait for it.
    attempts: watch::Sender<u64>,
    /// Set by a failure, cleared by the next success: lets successes skip the state lock.
    recovering: AtomicBool,
}

/// The connection and the breaker. Guarded by a `std` mutex held only for field updates.
#[derive(Default)]
struct State {
    conn: Option<MultiplexedConnection>,
    /// Which connection `conn` is: a failure reported on an older connection must not drop a
    /// newer one.
    generation: u64,
    /// A connection attempt is running on a spawned task, started then.
    connecting: Option<Instant>,
    /// The breaker is open until then.
    open_until: Option<Instant>,
    /// Consecutive failures, for the back-off.
    failures: u32,
    /// An outage has been logged and its end has not: one warning per outage, not per request.
    down_logged: bool,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConn")
            .field("addr", &self.inner.addr)
            .field("timeout", &self.inner.timeout)
            .field("up", &self.is_up())
            .finish()
    }
}

impl RedisConn {
    /// A connection to `url` (the `redis.url` YAML value) whose commands time out after
    /// `timeout`. Only parses the URL: no I/O, so it succeeds while Redis is down, and may be
    /// called outside a Tokio runtime.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(|e| RedisError::InvalidUrl(e.to_string()))?;
        let addr = client.get_connection_info().addr.to_string();
        let (attempts, _) = watch::channel(0);
        Ok(RedisConn {
            inner: Arc::new(Inner {
                client,
                addr,
                timeout,
                state: Mutex::new(State::default()),
                attempts,
                recovering: AtomicBool::new(false),
            }),
            errors: None,
        })
    }

    /// A handle on the same connection whose failed commands (timeouts, an unreachable
    /// Redis, error replies) are counted on `errors`.
    pub fn counting(&self, errors: prometheus::IntCounter) -> RedisConn {
        RedisConn {
            inner: self.inner.clone(),
            errors: Some(errors),
        }
    }

    /// Counts one failure this handle's user met outside [`RedisConn::run`] (a pub/sub
    /// connection of its own).
    pub fn count_error(&self) {
        if let Some(c) = &self.errors {
            c.inc();
        }
    }

    /// The per-command timeout given to [`RedisConn::new`].
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// `host:port` of the server (no credentials), for logs and metrics.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The redis-rs client, for what needs a connection of its own (pub/sub subscribers).
    pub fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Whether a connection is established and the breaker closed: commands are expected to
    /// reach Redis. For metrics and readiness reports; a `true` can still be followed by a
    /// failing command.
    pub fn is_up(&self) -> bool {
        let st = self.inner.lock();
        st.conn.is_some() && !st.breaker_open(Instant::now())
    }

    /// Starts connecting (if needed) and waits until connected or `within` has passed; returns
    /// [`RedisConn::is_up`]. For startup logs and tests: the request path never needs it.
    pub async fn wait_up(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let mut rx = self.inner.attempts.subscribe();
            match self.inner.connection() {
                Ok(Some(_)) => return true,
                Ok(None) => {} // This call started an attempt.
                Err(_) => {
                    let now = Instant::now();
                    let open_until = self.inner.lock().open_until.filter(|u| *u > now);
                    if let Some(until) = open_until {
                        // Breaker open: wait for it to close, then try again.
                        if until >= deadline {
                            return false;
                        }
                        tokio::time::sleep_until(until).await;
                        continue;
                    }
                    // Another caller's attempt is running: wait for its outcome.
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return self.is_up();
            }
        }
    }

    /// Runs one command within the connection's timeout.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        self.query_within(cmd, self.inner.timeout).await
    }

    /// Runs one command within `timeout` instead of the connection's (a bulk cache read may
    /// deserve more than a limiter check).
    pub async fn query_within<T: FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Result<T, RedisError> {
        self.run(timeout, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// Runs a script (`EVALSHA`, loading it on `NOSCRIPT`) within the connection's timeout.
    pub async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        self.run(self.inner.timeout, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Runs `op` on the shared connection within `timeout`, through the breaker: the general
    /// form of [`RedisConn::query`] for pipelines and multi-step work. `op` gets a handle to
    /// the one multiplexed connection (cloning it is cheap and shares the socket).
    ///
    /// Outcomes feed the breaker: a timeout or an I/O error drops the connection and opens
    /// it; server errors that mean "not serving now" (`LOADING`, `BUSY` (a script running), `TRYAGAIN`,
    /// `CLUSTERDOWN`, `MASTERDOWN`) open it but keep the connection; other server errors are
    /// this command's problem only.
    pub async fn run<T, F, Fut>(&self, timeout: Duration, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = self.run_uncounted(timeout, op).await;
        if result.is_err() {
            self.count_error();
        }
        result
    }

    async fn run_uncounted<T, F, Fut>(&self, timeout: Duration, op: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + timeout;
        // Which connection the command went out on, if it got one: a timeout then means that
        // connection is stalled. (A timeout while waiting for a connection attempt is left to
        // the attempt, which reports its own outcome.)
        let mut sent_on: Option<u64> = None;
        let work = async {
            let (conn, generation) = self.connected().await?;
            sent_on = Some(generation);
            Ok::<_, RedisError>((op(conn).await, generation))
        };
        let outcome = tokio::time::timeout_at(deadline, work).await;
        match outcome {
            Err(_elapsed) => {
                if let Some(generation) = sent_on {
                    self.inner
                        .failed(Some(generation), &format!("no answer within {timeout:?}"));
                }
                Err(RedisError::Timeout(timeout))
            }
            Ok(Err(e)) => Err(e),
            Ok(Ok((Ok(value), _))) => {
                self.inner.succeeded();
                Ok(value)
            }
            Ok(Ok((Err(e), generation))) => Err(self.inner.classify(e, generation)),
        }
    }

    /// The connection, waiting (within the caller's timeout) for an attempt that is just
    /// starting; see [`Inner::connection`].
    async fn connected(&self) -> Result<(MultiplexedConnection, u64), RedisError> {
        let mut rx = self.inner.attempts.subscribe();
        if let Some(found) = self.inner.connection()? {
            return Ok(found);
        }
        // An attempt is starting: wait for its outcome.
        let _ = rx.changed().await;
        self.inner.connection_now().ok_or(RedisError::Down)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a handful of independent fields; a panic elsewhere leaves none
        // half-updated in a way that matters, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Ok(Some(conn))` if connected; `Ok(None)` if a connection attempt is starting (this
    /// call started it, or another did less than one command timeout ago): wait on
    /// `attempts`; `Err(Down)` if the breaker is open, the running attempt is older (a
    /// stalled connect: waiting on it would cost every request its timeout), or there is no
    /// runtime to run one on.
    ///
    /// So at startup or after a restart of Redis, the requests that arrive while the
    /// connection is being made (normally a millisecond) use it instead of failing, while
    /// against a blackholed Redis only the requests of an attempt's first timeout wait.
    fn connection(self: &Arc<Self>) -> Result<Option<(MultiplexedConnection, u64)>, RedisError> {
        let now = Instant::now();
        let mut st = self.lock();
        if st.breaker_open(now) {
            return Err(RedisError::Down);
        }
        if let Some(conn) = &st.conn {
            return Ok(Some((conn.clone(), st.generation)));
        }
        if let Some(started) = st.connecting {
            return if now < started + self.timeout {
                Ok(None)
            } else {
                Err(RedisError::Down)
            };
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(RedisError::Down);
        };
        st.connecting = Some(now);
        drop(st);
        runtime.spawn(connect(self.clone()));
        Ok(None)
    }

    fn connection_now(&self) -> Option<(MultiplexedConnection, u64)> {
        let st = self.lock();
        st.conn.as_ref().map(|c| (c.clone(), st.generation))
    }

    /// A command succeeded: the back-off starts over.
    fn succeeded(&self) {
        if !self.recovering.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut st = self.lock();
        st.failures = 0;
        if st.down_logged {
            st.down_logged = false;
            log::info!("redis {}: answering again", self.addr);
        }
    }

    /// Opens the breaker after a failure. `generation`: the connection the failure happened
    /// on, which is dropped (if still current); `None` keeps the connection.
    fn failed(&self, generation: Option<u64>, why: &str) {
        let mut st = self.lock();
        if let Some(g) = generation {
            if g != st.generation {
                return; // A newer connection exists: this failure is old news.
            }
            st.conn = None;
        }
        st.failures = st.failures.saturating_add(1);
        self.recovering.store(true, Ordering::Release);
        let backoff = backoff(st.failures);
        st.open_until = Some(Instant::now() + backoff);
        if !st.down_logged {
            st.down_logged = true;
            log::warn!(
                "redis {}: {why}; failing fast for {backoff:?} at a time until it answers again",
                self.addr
            );
        }
    }

    /// Maps a redis-rs error to ours, feeding the breaker.
    fn classify(&self, e: redis::RedisError, generation: u64) -> RedisError {
        use redis::ErrorKind as K;
        if e.is_io_error() || e.is_unrecoverable_error() {
            self.failed(Some(generation), &e.to_string());
            return RedisError::Down;
        }
        let not_serving = matches!(
            e.kind(),
            K::BusyLoadingError | K::TryAgain | K::ClusterDown | K::MasterDown
        ) || e.code() == Some("BUSY");
        if not_serving {
            self.failed(None, &e.to_string());
            return RedisError::Down;
        }
        RedisError::Protocol(e.to_string())
    }
}

impl State {
    fn breaker_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }
}

/// 500 ms, 1 s, 2 s, 2 s, ...
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// Ends a connection attempt however its task ends: if it is dropped before reporting (a
/// panic, a runtime shutting down), `connecting` must not stay set, or no attempt would ever
/// be made again.
struct AttemptGuard(Arc<Inner>);

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        self.0.lock().connecting = None;
        self.0.attempts.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// One connection attempt, on its own task so that no caller's cancellation aborts it.
async fn connect(inner: Arc<Inner>) {
    let _guard = AttemptGuard(inner.clone());
    let config = AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
    let attempt = tokio::time::timeout(
        CONNECT_TIMEOUT,
        inner
            .client
            .get_multiplexed_async_connection_with_config(&config),
    )
    .await;
    let outcome = match attempt {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
    };
    match outcome {
        Ok(conn) => {
            let mut st = inner.lock();
            st.generation = st.generation.wrapping_add(1);
            st.conn = Some(conn);
            st.open_until = None;
            if st.down_logged {
                st.down_logged = false;
                log::info!("redis {}: reconnected", inner.addr);
            } else {
                log::info!("redis {}: connected", inner.addr);
            }
        }
        Err(why) => inner.failed(None, &format!("cannot connect: {why}")),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The Redis the tests use: `BRIDGECORE_TEST_REDIS`, default the local one.
    pub(crate) fn test_url() -> String {
        std::env::var("BRIDGECORE_TEST_REDIS")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
    }

    /// A connected test Redis, or `None` (with a notice) when `BRIDGECORE_TEST_REDIS` is unset
    /// and the default Redis does not answer. With the variable set (CI), an unreachable
    /// Redis fails the test.
    pub(crate) async fn test_redis(timeout: Duration) -> Option<Arc<RedisConn>> {
        let conn = Arc::new(RedisConn::new(&test_url(), timeout).expect("test redis url"));
        if conn.wait_up(Duration::from_secs(3)).await {
            return Some(conn);
        }
        if std::env::var_os("BRIDGECORE_TEST_REDIS").is_some() {
            panic!("BRIDGECORE_TEST_REDIS={} is unreachable", test_url());
        }
        eprintln!("NOTICE: no Redis at {}: skipping this test", test_url());
        None
    }

    /// A key prefix of its own for each test, so tests running in parallel never meet.
    pub(crate) fn unique_prefix(test: &str) -> String {
        format!("{KEY_PREFIX}test:{test}:{}:", uuid::Uuid::new_v4().simple())
    }

    /// A port nothing listens on: connections are refused at once.
    pub(crate) const CLOSED: &str = "redis://127.0.0.1:1/0";

    #[test]
    fn construction_does_no_io_and_rejects_bad_urls() {
        // Outside any runtime, with nothing listening: still builds.
        let conn = RedisConn::new(CLOSED, DEFAULT_TIMEOUT).expect("valid url");
        assert!(!conn.is_up());
        assert_eq!(conn.addr(), "127.0.0.1:1");
        assert!(matches!(
            RedisConn::new("http://nope", DEFAULT_TIMEOUT),
            Err(RedisError::InvalidUrl(_))
        ));
    }

    #[test]
    fn backoff_doubles_up_to_two_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(40), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn commands_round_trip_and_report_server_errors() {
        let Some(conn) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        assert!(conn.is_up());
        let key = format!("{}k", unique_prefix("roundtrip"));
        let () = conn
            .query(redis::cmd("SET").arg(&key).arg("v").arg("EX").arg(10))
            .await
            .expect("set");
        let got: Option<String> = conn.query(redis::cmd("GET").arg(&key)).await.expect("get");
        assert_eq!(got.as_deref(), Some("v"));
        // A server-side error is this command's problem only: Redis stays up.
        let err = conn
            .query::<i64>(redis::cmd("INCR").arg(&key))
            .await
            .expect_err("not an integer");
        assert!(matches!(err, RedisError::Protocol(_)), "{err:?}");
        assert!(conn.is_up());
        let () = conn.query(redis::cmd("DEL").arg(&key)).await.expect("del");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_racing_the_first_connection_all_use_it() {
        let Some(probe) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        drop(probe);
        // A fresh connection, not connected yet: twenty commands at once.
        let conn = Arc::new(RedisConn::new(&test_url(), Duration::from_secs(1)).expect("url"));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move { conn.query::<String>(&redis::cmd("PING")).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("task").as_deref(), Ok("PONG"));
        }
        assert!(conn.is_up());
    }

    #[tokio::test]
    async fn unreachable_redis_fails_fast_behind_the_breaker() {
        let conn = RedisConn::new(CLOSED, DEFAULT_TIMEOUT).expect("url");
        let started = std::time::Instant::now();
        let err = conn
            .query::<String>(&redis::cmd("PING"))
            .await
            .expect_err("nothing listens");
        assert!(
            matches!(err, RedisError::Down | RedisError::Timeout(_)),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!conn.is_up());
        // The breaker is open now: further commands do not even try.
        assert!(conn.inner.lock().breaker_open(Instant::now()));
        for _ in 0..100 {
            assert_eq!(
                conn.query::<String>(&redis::cmd("PING")).await,
                Err(RedisError::Down)
            );
        }
        assert!(!conn.wait_up(Duration::from_millis(50)).await);
    }

    /// A server that accepts connections and never answers: a stalled or blackholed Redis.
    pub(crate) async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (format!("redis://{addr}/0"), task)
    }

    #[tokio::test]
    async fn a_silent_redis_costs_one_timeout_then_fails_fast() {
        let (url, server) = silent_server().await;
        let conn = RedisConn::new(&url, DEFAULT_TIMEOUT).expect("url");
        let started = std::time::Instant::now();
        let err = conn
            .query::<String>(&redis::cmd("PING"))
            .await
            .expect_err("never answers");
        assert_eq!(err, RedisError::Timeout(DEFAULT_TIMEOUT));
        assert!(started.elapsed() < Duration::from_millis(500));
        // Until the attempt or the breaker resolves, the next commands do not wait.
        let started = std::time::Instant::now();
        for _ in 0..50 {
            let err = conn
                .query::<String>(&redis::cmd("PING"))
                .await
                .expect_err("never answers");
            assert!(
                matches!(err, RedisError::Down | RedisError::Timeout(_)),
                "{err:?}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert!(!conn.is_up());
        server.abort();
    }

    #[tokio::test]
    async fn recovers_once_the_breaker_closes() {
        let Some(good) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        // Simulate an outage on a healthy server: a timeout drops the connection and opens
        // the breaker; once it closes, the next command reconnects.
        let err = good
            .run(Duration::from_millis(20), |mut c| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                redis::cmd("PING").query_async::<String>(&mut c).await
            })
            .await
            .expect_err("times out");
        assert_eq!(err, RedisError::Timeout(Duration::from_millis(20)));
        assert!(!good.is_up());
        assert_eq!(
            good.query::<String>(&redis::cmd("PING")).await,
            Err(RedisError::Down)
        );
        assert!(good.wait_up(Duration::from_secs(3)).await);
        let pong: String = good.query(&redis::cmd("PING")).await.expect("ping");
        assert_eq!(pong, "PONG");
        assert_eq!(good.inner.lock().failures, 0);
    }
}
