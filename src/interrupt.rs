//! Stopping a run that holds locks, cleanly: on SIGINT (Ctrl-C, and the first signal GitHub
//! Actions sends a cancelled job) or SIGTERM (its second, 7.5 s later; most CI runners' only
//! one), or when another run took a lock over, no new operation starts, the ones in flight get
//! `GRACE` to finish, then the run ends: what was done is recorded, the locks are released
//! (`commands::Setup::locked`) and the process exits non-zero, all well within 10 s. A second
//! Ctrl-C ends the process at once (state is written ahead of every create: still recoverable).

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long operations in flight may go on after a stop is asked for.
pub const GRACE: Duration = Duration::from_secs(5);

static STOP: AtomicBool = AtomicBool::new(false);
static ASKED: LazyLock<tokio::sync::Notify> = LazyLock::new(tokio::sync::Notify::new);
static WATCHING: std::sync::Once = std::sync::Once::new();

/// The flag the executor reads before it starts each operation.
pub fn flag() -> &'static AtomicBool {
    &STOP
}

/// Asks the run to stop, saying why (once).
pub fn request(why: &str) {
    if !STOP.swap(true, Ordering::SeqCst) {
        eprintln!(
            "{why}: starting nothing more; the operations in flight have {} s to finish",
            GRACE.as_secs()
        );
    }
    ASKED.notify_waiters();
}

/// Completes once a stop has been asked for.
pub async fn requested() {
    loop {
        let asked = ASKED.notified();
        if STOP.load(Ordering::SeqCst) {
            return;
        }
        asked.await;
    }
}

/// Runs `work`; once a stop is asked for, it has `GRACE` to end before it is cut off (its
/// future dropped: every create in flight was recorded as pending before it was sent).
/// None when it was cut off.
pub async fn bounded<T>(work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        _ = async { requested().await; tokio::time::sleep(GRACE).await } => None,
    }
}

/// Listens for SIGINT and SIGTERM from now on (once per process; needs the runtime).
pub fn watch() {
    WATCHING.call_once(|| {
        tokio::spawn(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                let mut interrupts = 0;
                loop {
                    tokio::select! {
                        _ = int.recv() => {
                            interrupts += 1;
                            if interrupts > 1 {
                                std::process::exit(crate::error::Class::Interrupted.exit_code());
                            }
                            request("interrupted (Ctrl-C again to stop now)");
                        }
                        _ = term.recv() => request("terminated (SIGTERM)"),
                    }
                }
            }
            #[cfg(not(unix))]
            {
                if tokio::signal::ctrl_c().await.is_ok() {
                    request("interrupted (Ctrl-C again to stop now)");
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(crate::error::Class::Interrupted.exit_code());
                    }
                }
            }
        });
    });
}
