//! How many calls go to one AWS service at once: a limit per service and per use (reads while
//! planning, changes while applying) that adapts as TCP's congestion window does. It starts at
//! a modest number, doubles every round of calls while the service answers (slow start), and
//! once the service has throttled grows by one per round; a throttling answer halves it (once
//! per round, however many calls of that round were throttled). AWS's limits are per account,
//! per service and per API, so the limit is process-wide: every stack planned or applied at
//! once shares it.
//!
//! The signals come from every client's answers (`Signals`, an SDK interceptor, sees each
//! attempt, retries included); the SDK retries the throttled call after a jittered backoff
//! (standard mode: its adaptive mode held a fresh client to a fraction of a call a second).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// What a call does, for its limit: AWS throttles reads and changes separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    Read,
    Write,
}

/// The adaptive limit of one service and use.
#[derive(Debug)]
pub struct Limiter {
    state: Mutex<Window>,
    freed: tokio::sync::Notify,
}

#[derive(Debug)]
struct Window {
    limit: f64,
    max: f64,
    in_flight: usize,
    /// Throttled once: from then on the limit grows by one per round, not doubles.
    congested: bool,
    /// When the limit was last halved: throttles of the same round halve it once.
    last_cut: Option<Instant>,
    /// For logs and tests: the lowest the limit went, and how many throttles were seen.
    lowest: f64,
    throttles: u64,
}

/// Calls of one round are throttled together; a later throttle is a new signal.
const ROUND: Duration = Duration::from_millis(200);

impl Limiter {
    pub fn new(start: usize, max: usize) -> Limiter {
        let max = max.max(1) as f64;
        let start = (start.max(1) as f64).min(max);
        Limiter {
            state: Mutex::new(Window {
                limit: start,
                max,
                in_flight: 0,
                congested: false,
                last_cut: None,
                lowest: start,
                throttles: 0,
            }),
            freed: tokio::sync::Notify::new(),
        }
    }

    /// Waits until fewer calls than the limit are in flight; the permit frees its place when
    /// dropped.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            {
                let mut w = self.state.lock().unwrap();
                if (w.in_flight as f64) < w.limit.floor().max(1.0) {
                    w.in_flight += 1;
                    return Permit(self);
                }
            }
            freed.await;
        }
    }

    /// A call answered: the limit grows (doubling per round until the first throttle, then by
    /// one per round), up to its maximum.
    pub fn answered(&self) {
        let mut w = self.state.lock().unwrap();
        let step = if w.congested { 1.0 / w.limit } else { 1.0 };
        w.limit = (w.limit + step).min(w.max);
        drop(w);
        self.freed.notify_waiters();
    }

    /// A call was throttled: the limit halves (at most once per round).
    pub fn throttled(&self, service: &str) {
        let mut w = self.state.lock().unwrap();
        w.throttles += 1;
        w.congested = true;
        if w.last_cut.is_some_and(|t| t.elapsed() < ROUND) {
            return;
        }
        let before = w.limit;
        w.limit = (w.limit / 2.0).max(1.0);
        w.lowest = w.lowest.min(w.limit);
        w.last_cut = Some(Instant::now());
        tracing::info!(
            "{service}: throttled; calls at once {} -> {}",
            before.floor(),
            w.limit.floor()
        );
    }

    /// The limit now (whole calls).
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.state.lock().unwrap().limit.floor() as usize
    }
}

pub struct Permit<'a>(&'a Limiter);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().in_flight -= 1;
        self.0.freed.notify_waiters();
    }
}

/// Where calls start and how far they may grow: writes start at 32 and grow to `--parallelism`
/// (set by `set_max_writes`), reads start at 32 and grow to 64 (`DEPLOY_MAX_READS`).
static MAX_WRITES: Mutex<usize> = Mutex::new(64);

/// Sets `--parallelism` (before any call); returns it.
pub fn set_max_writes(n: usize) -> usize {
    *MAX_WRITES.lock().unwrap() = n.max(1);
    n.max(1)
}

fn max_reads() -> usize {
    std::env::var("DEPLOY_MAX_READS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

type Registry = Mutex<BTreeMap<(String, Use), &'static Limiter>>;
static LIMITERS: LazyLock<Registry> = LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// The process-wide limiter of a service (`iam`, `sfn`, ... as the SDK names them) and use.
pub fn limiter(service: &str, use_: Use) -> &'static Limiter {
    let mut all = LIMITERS.lock().unwrap();
    all.entry((service.to_string(), use_)).or_insert_with(|| {
        let (start, max) = match use_ {
            Use::Read => (32, max_reads()),
            Use::Write => (32, *MAX_WRITES.lock().unwrap()),
        };
        Box::leak(Box::new(Limiter::new(start, max)))
    })
}

/// Both limiters of a service: answers and throttles count for reads and writes alike (AWS
/// says "Rate exceeded" for the account's calls to the service, whichever they were).
fn both(service: &str) -> [&'static Limiter; 2] {
    [limiter(service, Use::Read), limiter(service, Use::Write)]
}

/// The SDK interceptor that tells a service's limiters about each answer.
#[derive(Debug)]
pub struct Signals(pub &'static str);

impl Intercept for Signals {
    fn name(&self) -> &'static str {
        "deploy::throttle::Signals"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        let status = response.status().as_u16();
        let error_type = response.headers().get("x-amzn-ErrorType").unwrap_or("");
        let body = response.body().bytes().unwrap_or(&[]);
        if is_throttling(status, error_type, body) {
            for l in both(self.0) {
                l.throttled(self.0);
            }
        } else if status < 500 {
            for l in both(self.0) {
                l.answered();
            }
        }
        Ok(())
    }
}

/// Whether an answer is AWS saying "too many calls", in any of its protocols' spellings.
pub fn is_throttling(status: u16, error_type: &str, body: &[u8]) -> bool {
    const CODES: [&str; 7] = [
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
    ];
    if status == 429 || error_type.contains("Throttl") {
        return true;
    }
    if !(status == 400 || status == 503) || body.len() > 4096 {
        return false;
    }
    let text = String::from_utf8_lossy(body);
    CODES.iter().any(|c| {
        text.contains(&format!("<Code>{c}</Code>"))
            || text.contains(&format!("\"{c}\""))
            || text.contains(&format!("#{c}\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn grows_while_answered_and_halves_once_per_round_of_throttles() {
        let l = Limiter::new(4, 64);
        for _ in 0..4 {
            l.answered();
        }
        assert_eq!(
            l.limit(),
            8,
            "slow start: one more per answer, doubling per round"
        );
        l.throttled("iam");
        assert_eq!(l.limit(), 4);
        l.throttled("iam");
        l.throttled("iam");
        assert_eq!(l.limit(), 4, "the same round's throttles halve it once");
        for _ in 0..4 {
            l.answered();
        }
        assert_eq!(
            l.limit(),
            4,
            "after a throttle: one more per round (4 answers), not per answer"
        );
        l.answered();
        assert_eq!(l.limit(), 5);
        for _ in 0..1000 {
            l.answered();
        }
        assert!(l.limit() <= 64 && l.limit() >= 40, "{}", l.limit());
        let capped = Limiter::new(16, 8);
        assert_eq!(capped.limit(), 8, "never above its maximum");
    }

    #[test]
    fn throttling_answers_are_recognised_in_every_protocol() {
        let query = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert!(is_throttling(400, "", query));
        assert!(is_throttling(400, "ThrottlingException", b"{}"));
        assert!(is_throttling(
            400,
            "",
            br#"{"__type":"com.amazonaws.sfn#ThrottlingException","message":"Rate exceeded"}"#
        ));
        assert!(is_throttling(429, "", b""));
        assert!(is_throttling(
            503,
            "",
            b"<Error><Code>SlowDown</Code></Error>"
        ));
        assert!(!is_throttling(
            400,
            "",
            b"<Error><Code>NoSuchEntity</Code></Error>"
        ));
        assert!(!is_throttling(200, "", b"Throttling"));
        assert!(!is_throttling(
            400,
            "ValidationException",
            br#"{"message":"name ThrottlingException is taken"}"#
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_more_calls_at_once_than_the_limit_and_fewer_once_throttled() {
        let l: &'static Limiter = Box::leak(Box::new(Limiter::new(6, 6)));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let run = |n: usize| {
            let (now, most) = (now.clone(), most.clone());
            async move {
                let calls = (0..n).map(|_| {
                    let (now, most) = (now.clone(), most.clone());
                    async move {
                        let _p = l.acquire().await;
                        let in_flight = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(in_flight, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                });
                futures::future::join_all(calls).await;
            }
        };
        run(40).await;
        assert_eq!(most.load(Ordering::SeqCst), 6);
        l.throttled("sfn");
        most.store(0, Ordering::SeqCst);
        run(40).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
