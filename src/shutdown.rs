//! The one stop signal passed down through a run. Sources stop reading when it
//! is raised; sinks never stop on it, they finish what was already read.
//! `run` takes it as a parameter, so tests raise it without real signals.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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

    /// Blocks until the flag is raised.
    pub fn wait(&self) {
        let mut guard = self.inner.lock.lock().expect("shutdown lock");
        while !self.is_requested() {
            guard = self.inner.cv.wait(guard).expect("shutdown lock");
        }
    }

    /// Blocks until the flag is raised or `timeout` passes; true if raised.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.inner.lock.lock().expect("shutdown lock");
        let (_guard, _) = self
            .inner
            .cv
            .wait_timeout_while(guard, timeout, |_| !self.is_requested())
            .expect("shutdown lock");
        self.is_requested()
    }
}

/// Installs the Ctrl+C / SIGTERM / SIGHUP handler: the first signal raises
/// `shutdown`; a second one calls `on_second` with the signal number (which is
/// expected to exit the process at once).
pub fn install_signal_handlers(
    shutdown: Shutdown,
    on_second: impl Fn(i32) + Send + 'static,
) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
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
    .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_usize(sig, last.clone(), sig as usize)
            .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_wins_and_waiters_wake() {
        let s = Shutdown::new();
        assert!(!s.wait_timeout(Duration::from_millis(1)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait());
        s.request(Some(15));
        s.request(Some(2));
        t.join().unwrap();
        assert!(s.is_requested());
        assert_eq!(s.signal(), Some(15));
    }
}
