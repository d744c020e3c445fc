//! One list call for many resources while planning: the attachments of a role or user are
//! all in one `ListAttached*Policies`, the targets of a rule in one `ListTargetsByRule`. While
//! a plan reads (`reading`), the first read of a key makes the call and the others of the same
//! key wait for its answer; outside a plan (the executor's re-checks) every read asks AWS
//! afresh.

use crate::error::Result;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

type Cell = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

#[derive(Default)]
pub struct Shared {
    cells: Mutex<HashMap<String, Cell>>,
    /// Whether this plan reads in batches (`batch`): a large stack's.
    batched: bool,
}

/// How many resources a stack has from which its plan reads in batches (`batch`): below it,
/// one call per resource, all at once, is as fast and asks for less than an account listing.
pub const BATCH_FROM: usize = 40;

tokio::task_local! {
    static SHARED: Arc<Shared>;
}

/// Runs a plan's reads with one list call per key; `batched`: with the batch reads of `batch`.
pub async fn reading<T>(batched: bool, reads: impl Future<Output = T>) -> T {
    let shared = Shared {
        batched,
        ..Default::default()
    };
    SHARED.scope(Arc::new(shared), reads).await
}

/// Whether the plan being read reads in batches (never outside a plan: the executor's
/// re-checks read each resource afresh).
pub fn batched() -> bool {
    SHARED.try_with(|s| s.batched).unwrap_or(false)
}

/// The answer of `fetch` for `key`: made once per plan (a failed call is not remembered: the
/// next read of the key asks again), or every time outside a plan.
pub async fn once<T, Fut>(key: String, fetch: impl FnOnce() -> Fut) -> Result<T>
where
    T: Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T>>,
{
    let Ok(shared) = SHARED.try_with(Arc::clone) else {
        return fetch().await;
    };
    let cell = shared.cells.lock().unwrap().entry(key).or_default().clone();
    let value = cell
        .get_or_try_init(|| async {
            fetch()
                .await
                .map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>)
        })
        .await?;
    Ok(value.downcast_ref::<T>().expect("one type per key").clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_key_is_asked_once_per_plan_and_every_time_outside_one() {
        let calls = AtomicUsize::new(0);
        let ask = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, crate::error::Error>(vec!["arn:a".to_string()])
        };
        let reads = (0..5).map(|_| once("role r".into(), ask));
        let got = reading(false, futures::future::join_all(reads)).await;
        assert!(
            got.iter()
                .all(|g| g.as_ref().unwrap() == &vec!["arn:a".to_string()])
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        once("role r".into(), ask).await.unwrap();
        once("role r".into(), ask).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
