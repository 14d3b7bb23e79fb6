//! The one stop signal passed down through a run. Sources stop reading when it
//! is raised (and cancel a request in flight, through [`Shutdown::cancelled`]);
//! sinks never stop on it, they finish what was already read.
//! `run` takes it as a parameter, so tests raise it without real signals.
//!
//! A sink marks the moments when exiting would leave its output torn or in
//! doubt (a batch being written to a file, a batch between `XA PREPARE` and
//! `XA COMMIT`) with [`Shutdown::critical`]; a second signal or the shutdown
//! watchdog ([`Shutdown::begin_exit`]) lets no new one begin and waits for
//! those open to end, within a bound, before the process exits.

use crate::error::PipelineError;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A cloneable stop flag that can also be waited on.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    signal: AtomicI32,
    lock: Mutex<()>,
    cv: Condvar,
    /// Wakes async waiters ([`Shutdown::cancelled`]) when the flag is raised.
    notify: tokio::sync::Notify,
    /// Critical sections open now (see [`Shutdown::critical`]), and
    /// whether the process is exiting (none may begin then).
    critical: Mutex<(usize, bool)>,
    critical_cv: Condvar,
}

impl Shutdown {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag; `signal` is the Unix signal number that caused it, if any.
    pub fn request(&self, signal: Option<i32>) {
        if let Some(s) = signal {
            let _ = self
                .inner
                .signal
                .compare_exchange(0, s, Ordering::SeqCst, Ordering::SeqCst);
        }
        let _guard = self.inner.lock.lock().expect("shutdown lock");
        self.inner.requested.store(true, Ordering::SeqCst);
        self.inner.cv.notify_all();
        self.inner.notify.notify_waiters();
    }

    /// Resolves once the flag is raised: `select!` it against a request in
    /// flight so a stop cancels the request at once.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }

    /// Marks a moment the process must not exit in (a batch being written,
    /// a prepared transaction not yet committed) until the guard is
    /// dropped. Once the process is exiting ([`Shutdown::begin_exit`]) it
    /// never returns: the section does not begin, and the process ends.
    pub fn critical(&self) -> CriticalGuard {
        let mut open = self.inner.critical.lock().expect("critical lock");
        while open.1 {
            open = self.inner.critical_cv.wait(open).expect("critical lock");
        }
        open.0 += 1;
        CriticalGuard {
            inner: self.inner.clone(),
        }
    }

    /// The process is about to exit: no critical section may begin from
    /// now on, and this waits (at most `limit`) for the open ones to end;
    /// true when none is open. Call it only right before exiting.
    pub fn begin_exit(&self, limit: Duration) -> bool {
        self.inner.critical.lock().expect("critical lock").1 = true;
        self.wait_for_critical(limit)
    }

    /// Waits until no critical section is open, or `limit` has passed;
    /// true when none is open.
    pub fn wait_for_critical(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut open = self.inner.critical.lock().expect("critical lock");
        while open.0 > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            open = self
                .inner
                .critical_cv
                .wait_timeout(open, left)
                .expect("critical lock")
                .0;
        }
        true
    }

    /// True once the flag is raised.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::Relaxed)
    }

    /// The signal that raised the flag, if a signal did.
    pub fn signal(&self) -> Option<i32> {
        match self.inner.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Blocks until the flag is raised or `limit` has passed; true when it
    /// was raised.
    pub fn wait_for(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut guard = self.inner.lock.lock().expect("shutdown lock");
        while !self.is_requested() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = self
                .inner
                .cv
                .wait_timeout(guard, left)
                .expect("shutdown lock")
                .0;
        }
        true
    }

    /// Blocks until the flag is raised.
    pub fn wait(&self) {
        let mut guard = self.inner.lock.lock().expect("shutdown lock");
        while !self.is_requested() {
            guard = self.inner.cv.wait(guard).expect("shutdown lock");
        }
    }
}

/// An open critical section; see [`Shutdown::critical`].
pub struct CriticalGuard {
    inner: Arc<Inner>,
}

impl Drop for CriticalGuard {
    fn drop(&mut self) {
        let mut open = self.inner.critical.lock().expect("critical lock");
        open.0 -= 1;
        if open.0 == 0 {
            self.inner.critical_cv.notify_all();
        }
    }
}

/// Longest a second signal or the watchdog waits for a critical section.
pub const CRITICAL_LIMIT: Duration = Duration::from_secs(10);

/// Installs the Ctrl+C / SIGTERM / SIGHUP handler: the first signal raises
/// `shutdown`; a second one calls `on_second` with the signal number (which is
/// expected to exit the process at once).
pub fn install_signal_handlers(
    shutdown: Shutdown,
    on_second: impl Fn(i32) + Send + 'static,
) -> Result<(), PipelineError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let failed = |e: &dyn std::fmt::Display| {
        PipelineError::Config(format!(
            "cannot install the signal handler: {e}; nothing was read: run it again"
        ))
    };
    // ctrlc runs the handler on its own thread and cannot say which signal
    // arrived. signal-hook's flag handlers, chained with ctrlc's in the same
    // signal handler invocation, record the number; the ctrlc thread may wake
    // a moment before that store lands, so it waits (briefly) for it.
    let last = Arc::new(AtomicUsize::new(0));
    let seen = AtomicUsize::new(0);
    let last_in_handler = last.clone();
    ctrlc::set_handler(move || {
        let waited = std::time::Instant::now();
        let mut sig = last_in_handler.load(Ordering::SeqCst);
        while sig == 0 && waited.elapsed() < Duration::from_secs(1) {
            std::thread::yield_now();
            sig = last_in_handler.load(Ordering::SeqCst);
        }
        let sig = match sig {
            0 => SIGINT,
            s => s as i32,
        };
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            shutdown.request(Some(sig));
        } else {
            on_second(sig);
        }
    })
    .map_err(|e| failed(&e))?;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_usize(sig, last.clone(), sig as usize)
            .map_err(|e| failed(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_wins_and_waiters_wake() {
        let s = Shutdown::new();
        assert!(!s.is_requested());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait());
        s.request(Some(15));
        s.request(Some(2));
        t.join().unwrap();
        assert!(s.is_requested());
        assert_eq!(s.signal(), Some(15));
    }

    #[test]
    fn cancelled_resolves_for_waiters_before_and_after_the_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s = Shutdown::new();
        let s2 = s.clone();
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s2.request(None);
        });
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), s.cancelled())
                .await
                .expect("woken by the request");
            // Already raised: resolves at once.
            tokio::time::timeout(Duration::from_millis(10), s.cancelled())
                .await
                .expect("already raised");
        });
        raiser.join().unwrap();
    }

    #[test]
    fn critical_sections_hold_the_exit_back_within_a_bound() {
        let s = Shutdown::new();
        assert!(s.wait_for_critical(Duration::from_millis(1)));
        let guard = s.critical();
        assert!(!s.wait_for_critical(Duration::from_millis(20)));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(guard);
        });
        assert!(s.wait_for_critical(Duration::from_secs(5)));
        t.join().unwrap();
    }

    #[test]
    fn once_exiting_no_critical_section_begins() {
        let s = Shutdown::new();
        let guard = s.critical();
        let s2 = s.clone();
        let exiting = std::thread::spawn(move || s2.begin_exit(Duration::from_secs(5)));
        // The open section ends; one that would begin now never does.
        std::thread::sleep(Duration::from_millis(30));
        let (began_tx, began_rx) = std::sync::mpsc::channel();
        let s3 = s.clone();
        std::thread::spawn(move || {
            let _g = s3.critical();
            let _ = began_tx.send(());
        });
        drop(guard);
        assert!(exiting.join().unwrap());
        assert!(began_rx.recv_timeout(Duration::from_millis(200)).is_err());
    }
}
