//! The engine's clock. A real run (`deploy local`) waits on tokio's timers; a virtual run
//! (`deploy test`, plans, conformance) keeps its own time: [`run_virtual`] polls the execution
//! until nothing can go on, then moves the time to the earliest timer and wakes it, so a Wait
//! of a day, a retry's backoff or a timeout takes no real time and the order of events is the
//! order of their (virtual) times.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Where an execution's time comes from.
#[derive(Clone, Default)]
pub enum Clock {
    /// tokio's clock, from when the execution started.
    #[default]
    Real,
    /// Time that moves only when the execution waits for it.
    Virtual(Arc<VirtualTime>),
}

/// A started clock: what `now` and `sleep` answer to.
pub struct Started {
    clock: Clock,
    start: tokio::time::Instant,
}

/// The time of a virtual run and the timers that wait on it.
#[derive(Default)]
pub struct VirtualTime {
    inner: Mutex<Timers>,
}

#[derive(Default)]
struct Timers {
    now: Duration,
    next_id: u64,
    waiting: BTreeMap<(Duration, u64), Option<Waker>>,
}

/// A timer ran out before the work it bounded finished.
#[derive(Debug)]
pub struct Elapsed;

impl Clock {
    pub fn start(&self) -> Started {
        Started {
            clock: self.clone(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Started {
    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        match &self.clock {
            Clock::Real => self.start.elapsed(),
            Clock::Virtual(t) => t.inner.lock().unwrap().now,
        }
    }

    pub async fn sleep(&self, d: Duration) {
        match &self.clock {
            Clock::Real => tokio::time::sleep(d).await,
            Clock::Virtual(t) => t.sleep(d).await,
        }
    }

    /// `work`, unless `d` runs out first.
    pub async fn timeout<F: Future>(&self, d: Duration, work: F) -> Result<F::Output, Elapsed> {
        match &self.clock {
            Clock::Real => tokio::time::timeout(d, work).await.map_err(|_| Elapsed),
            Clock::Virtual(t) => {
                let (mut work, mut timer) = (pin!(work), pin!(t.sleep(d)));
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(v) = work.as_mut().poll(cx) {
                        return Poll::Ready(Ok(v));
                    }
                    timer.as_mut().poll(cx).map(|()| Err(Elapsed))
                })
                .await
            }
        }
    }

    /// Whether this is a real clock (timers of its own may then be spawned on tokio).
    pub fn is_real(&self) -> bool {
        matches!(self.clock, Clock::Real)
    }
}

impl VirtualTime {
    fn sleep(self: &Arc<Self>, d: Duration) -> Sleep {
        let mut t = self.inner.lock().unwrap();
        t.next_id += 1;
        Sleep {
            time: self.clone(),
            key: (t.now + d, t.next_id),
        }
    }

    /// Moves the time to the earliest timer and wakes every timer due then; false when no
    /// timer waits.
    fn advance(&self) -> bool {
        let mut t = self.inner.lock().unwrap();
        let Some((&(due, _), _)) = t.waiting.first_key_value() else {
            return false;
        };
        t.now = t.now.max(due);
        let now = t.now;
        let due: Vec<Waker> = t
            .waiting
            .iter_mut()
            .take_while(|((at, _), _)| *at <= now)
            .filter_map(|(_, w)| w.take())
            .collect();
        drop(t);
        due.into_iter().for_each(Waker::wake);
        true
    }
}

/// A virtual timer: ready once the time reaches its due time; forgotten when dropped.
struct Sleep {
    time: Arc<VirtualTime>,
    key: (Duration, u64),
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut t = self.time.inner.lock().unwrap();
        if t.now >= self.key.0 {
            t.waiting.remove(&self.key);
            return Poll::Ready(());
        }
        t.waiting.insert(self.key, Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Ok(mut t) = self.time.inner.lock() {
            t.waiting.remove(&self.key);
        }
    }
}

struct Flag(AtomicBool);

impl futures::task::ArcWake for Flag {
    fn wake_by_ref(me: &Arc<Self>) {
        me.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `work` on this thread with `time` as its clock: polled while anything wakes it, and
/// when nothing does, the time moves to the next timer. Panics if the work waits with no
/// timer set (nothing could ever wake it: a virtual run has nothing outside it to wait on).
pub fn run_virtual<F: Future>(time: &VirtualTime, work: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = futures::task::waker(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut work = pin!(work);
    loop {
        if let Poll::Ready(v) = work.as_mut().poll(&mut cx) {
            return v;
        }
        if !flag.0.swap(false, Ordering::SeqCst) && !time.advance() {
            panic!("a virtual execution waits on nothing that could ever wake it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timers wake in the order of their times, and a long wait takes no real time.
    #[test]
    fn virtual_time_moves_only_to_the_next_timer() {
        let time = Arc::new(VirtualTime::default());
        let clock = Clock::Virtual(time.clone()).start();
        let order = Mutex::new(Vec::new());
        run_virtual(&time, async {
            let a = async {
                clock.sleep(Duration::from_secs(86_400)).await;
                order.lock().unwrap().push(("day", clock.elapsed()));
            };
            let b = async {
                clock.sleep(Duration::from_secs(5)).await;
                order.lock().unwrap().push(("five", clock.elapsed()));
            };
            futures::join!(a, b);
        });
        assert_eq!(
            *order.lock().unwrap(),
            vec![
                ("five", Duration::from_secs(5)),
                ("day", Duration::from_secs(86_400))
            ]
        );
    }

    /// A timeout that did not run out leaves no timer behind to move the time to.
    #[test]
    fn a_timeout_that_did_not_run_out_moves_no_time() {
        let time = Arc::new(VirtualTime::default());
        let clock = Clock::Virtual(time.clone()).start();
        run_virtual(&time, async {
            let done = clock
                .timeout(
                    Duration::from_secs(300),
                    clock.sleep(Duration::from_secs(2)),
                )
                .await;
            assert!(done.is_ok());
            // its timer is gone: nothing left that could move the time to 300 s
            assert!(time.inner.lock().unwrap().waiting.is_empty());
            clock.sleep(Duration::from_secs(1)).await;
            assert_eq!(clock.elapsed(), Duration::from_secs(3));
            let late = clock
                .timeout(Duration::from_secs(1), clock.sleep(Duration::from_secs(10)))
                .await;
            assert!(late.is_err());
            assert_eq!(clock.elapsed(), Duration::from_secs(4));
        });
    }
}
