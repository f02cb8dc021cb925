//! Bounded concurrency: async jobs run at most N at a time, each result
//! handed back as it finishes. The one loop every fan-out of requests needs:
//! start jobs while a slot is free, start none after the first failure, and
//! report a job that panicked or was cancelled instead of losing it.

use std::future::Future;

use tokio::task::{JoinError, JoinSet};

/// Jobs running at most `limit` at a time; see [`limited`].
///
/// Jobs are started only while [`Limited::next`] is awaited: `start` runs on
/// the caller's task (so it may borrow, and record something just before a
/// request goes out), the future it returns runs on the runtime. After the
/// first failure (a job's `Err`, a failed start, a panic) no job is started
/// any more. The jobs already running still report: a caller that wants
/// them to land keeps calling `next` until it returns `None`; one that does
/// not drops the `Limited`, which cancels them.
pub struct Limited<I, F, T, E> {
    pending: I,
    start: F,
    running: JoinSet<Result<T, E>>,
    limit: usize,
    failed: bool,
}

/// Runs `start(job)` for each of `jobs`, at most `limit` (at least 1) at a
/// time, in the order `jobs` gives them.
pub fn limited<J, Fut, T, E>(
    limit: usize,
    jobs: impl IntoIterator<Item = J>,
    mut start: impl FnMut(J) -> Fut,
) -> Limited<impl Iterator<Item = J>, impl FnMut(J) -> Result<Fut, E>, T, E>
where
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    try_limited(limit, jobs, move |job| Ok(start(job)))
}

/// [`limited`], for a `start` that can fail before its job runs: its error
/// comes back from [`Limited::next`] at once, without waiting for the jobs
/// running, and stops the starting of new ones like a job's error does.
pub fn try_limited<J, Fut, T, E>(
    limit: usize,
    jobs: impl IntoIterator<Item = J>,
    start: impl FnMut(J) -> Result<Fut, E>,
) -> Limited<impl Iterator<Item = J>, impl FnMut(J) -> Result<Fut, E>, T, E>
where
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    Limited {
        pending: jobs.into_iter(),
        start,
        running: JoinSet::new(),
        limit: limit.max(1),
        failed: false,
    }
}

impl<I, F, Fut, T, E> Limited<I, F, T, E>
where
    I: Iterator,
    F: FnMut(I::Item) -> Result<Fut, E>,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// Starts jobs up to the limit, then waits for one to finish: its
    /// result, or the `JoinError` of a job that panicked or was cancelled.
    /// `None` once every job has finished, or, after a failure, every job
    /// that was running.
    pub async fn next(&mut self) -> Option<Result<Result<T, E>, JoinError>> {
        while !self.failed && self.running.len() < self.limit {
            let Some(job) = self.pending.next() else {
                break;
            };
            match (self.start)(job) {
                Ok(run) => {
                    self.running.spawn(run);
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Ok(Err(e)));
                }
            }
        }
        let joined = self.running.join_next().await?;
        if !matches!(joined, Ok(Ok(_))) {
            self.failed = true;
        }
        Some(joined)
    }

    /// Every job's result, in the order they finished; or the first error,
    /// a panicked or cancelled job's made by `task_failed`. The jobs still
    /// running then are cancelled.
    pub async fn try_collect(
        mut self,
        task_failed: impl FnOnce(JoinError) -> E,
    ) -> Result<Vec<T>, E> {
        let mut out = Vec::new();
        while let Some(joined) = self.next().await {
            match joined {
                Ok(result) => out.push(result?),
                Err(e) => return Err(task_failed(e)),
            }
        }
        Ok(out)
    }

    /// Waits for every job that runs to land, even after a failure (none
    /// starts after it), and returns the first error, a panicked or
    /// cancelled job's made by `task_failed`. For writes whose results do
    /// not matter beyond succeeding: none is left in flight when it returns.
    pub async fn settle(mut self, task_failed: impl Fn(JoinError) -> E) -> Result<(), E> {
        let mut first_error = None;
        while let Some(joined) = self.next().await {
            if let Err(e) = joined.map_err(&task_failed).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts the jobs running and the most that ever ran at once.
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        most: AtomicUsize,
        started: AtomicUsize,
    }

    impl Gauge {
        async fn run(&self, for_ms: u64) {
            self.started.fetch_add(1, Ordering::SeqCst);
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(for_ms)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_every_job_and_never_more_than_the_limit_at_once() {
        let gauge = Arc::new(Gauge::default());
        let jobs = limited(4, 0..40u32, |i| {
            let gauge = gauge.clone();
            async move {
                gauge.run(2 + u64::from(i % 3)).await;
                Ok::<_, String>(i)
            }
        });
        let mut done = jobs.try_collect(|e| e.to_string()).await.unwrap();
        done.sort_unstable();
        assert_eq!(done, (0..40).collect::<Vec<_>>());
        assert_eq!(gauge.most.load(Ordering::SeqCst), 4);
        assert_eq!(gauge.now.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_limit_of_zero_runs_one_at_a_time() {
        let gauge = Arc::new(Gauge::default());
        let done = limited(0, 0..5u32, |i| {
            let gauge = gauge.clone();
            async move {
                gauge.run(1).await;
                Ok::<_, String>(i)
            }
        })
        .try_collect(|e| e.to_string())
        .await
        .unwrap();
        assert_eq!(done.len(), 5);
        assert_eq!(gauge.most.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_first_error_is_returned_and_no_job_starts_after_it() {
        let started = Arc::new(AtomicUsize::new(0));
        // Job 3 fails at once while jobs 1 and 2 still run: it is the first
        // error, and jobs 4.. never start.
        let r = limited(3, 0..20u32, |i| {
            let started = started.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 3 {
                    return Err(format!("job {i} failed"));
                }
                tokio::time::sleep(Duration::from_millis(if i == 0 { 1 } else { 50 })).await;
                Ok(i)
            }
        })
        .try_collect(|e| e.to_string())
        .await;
        assert_eq!(r, Err("job 3 failed".to_string()));
        assert_eq!(started.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn settle_lets_the_running_jobs_land_and_returns_the_first_error() {
        let landed = Arc::new(AtomicUsize::new(0));
        let r = limited(3, 0..10u32, |i| {
            let landed = landed.clone();
            async move {
                if i == 0 {
                    return Err(format!("job {i} failed"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                landed.fetch_add(1, Ordering::SeqCst);
                if i == 2 {
                    return Err(format!("job {i} failed"));
                }
                Ok(i)
            }
        })
        .settle(|e| e.to_string())
        .await;
        assert_eq!(r, Err("job 0 failed".to_string()));
        // Jobs 1 and 2 were running: both landed before it returned.
        assert_eq!(landed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn after_a_failure_the_running_jobs_still_report() {
        let landed = Arc::new(AtomicUsize::new(0));
        let mut jobs = limited(3, 0..10u32, |i| {
            let landed = landed.clone();
            async move {
                if i == 0 {
                    return Err(i);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                landed.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            }
        });
        let mut results = Vec::new();
        while let Some(joined) = jobs.next().await {
            results.push(joined.unwrap());
        }
        // Job 0's error first, then the two that were running; nothing
        // else started.
        assert_eq!(results[0], Err(0));
        results[1..].sort_unstable();
        assert_eq!(results, vec![Err(0), Ok(1), Ok(2)]);
        assert_eq!(landed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_start_is_returned_at_once_and_stops_the_rest() {
        let started = Arc::new(AtomicUsize::new(0));
        let mut jobs = try_limited(2, 0..10u32, |i| {
            if i == 2 {
                return Err(format!("cannot start job {i}"));
            }
            let started = started.clone();
            Ok(async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(i)
            })
        });
        let first = jobs.next().await.unwrap().unwrap();
        assert!(matches!(first, Ok(0 | 1)), "{first:?}");
        // Job 2 is started in the slot job 0 or 1 left: its start fails,
        // and that comes back before the other running job finishes.
        let second = jobs.next().await.unwrap().unwrap();
        assert_eq!(second, Err("cannot start job 2".to_string()));
        let third = jobs.next().await.unwrap().unwrap();
        assert!(matches!(third, Ok(0 | 1)), "{third:?}");
        assert!(jobs.next().await.is_none());
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }

    /// Job 1 of 0..5 panics.
    fn panicky(
        started: &Arc<AtomicUsize>,
    ) -> impl FnMut(u32) -> std::pin::Pin<Box<dyn Future<Output = Result<u32, String>> + Send>>
    {
        let started = started.clone();
        move |i| {
            let started = started.clone();
            Box::pin(async move {
                started.fetch_add(1, Ordering::SeqCst);
                if i == 1 {
                    panic!("job {i} panicked");
                }
                Ok(i)
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_stops_the_rest() {
        let started = Arc::new(AtomicUsize::new(0));
        let e = limited(1, 0..5u32, panicky(&started))
            .try_collect(|e| format!("task failed: {e}"))
            .await
            .unwrap_err();
        assert!(e.starts_with("task failed: "), "{e}");
        assert!(e.contains("job 1 panicked"), "{e}");

        let started = Arc::new(AtomicUsize::new(0));
        let mut jobs = limited(1, 0..5u32, panicky(&started));
        assert_eq!(jobs.next().await.unwrap().unwrap(), Ok(0));
        assert!(jobs.next().await.unwrap().unwrap_err().is_panic());
        assert!(jobs.next().await.is_none());
        assert_eq!(started.load(Ordering::SeqCst), 2);
    }
}
