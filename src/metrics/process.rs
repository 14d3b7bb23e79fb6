//! The standard `process_*` metrics, read at scrape time: CPU seconds from
//! `getrusage` (microseconds, so a 0.81 s run shows 0.81, not 0), resident
//! and virtual memory, open and maximum file descriptors, threads and the
//! start time, from `/proc/self` on Linux.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// When this process started, in seconds since the epoch (from
/// `/proc/self/stat`; now, where that cannot be read).
pub fn start_time() -> f64 {
    let boot_and_start = || -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces: field 22 is
        // the start time in clock ticks after boot.
        let after = &stat[stat.rfind(')')? + 2..];
        let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
        let btime: f64 = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some(btime + ticks / hz.max(1.0))
    };
    boot_and_start().unwrap_or_else(super::unix_now)
}

/// The `process_*` collector.
pub struct ProcessCollector {
    cpu: Counter,
    resident: IntGauge,
    virt: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
    descs: Vec<Desc>,
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

impl ProcessCollector {
    /// The collector for this process; `start_time` in seconds since the epoch.
    pub fn new(start_time: f64) -> ProcessCollector {
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))
        .expect("valid metric");
        let start = Gauge::with_opts(Opts::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        ))
        .expect("valid metric");
        start.set(start_time);
        let c = ProcessCollector {
            cpu,
            resident: gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            virt: gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
            open_fds: gauge("process_open_fds", "Number of open file descriptors."),
            max_fds: gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            threads: gauge("process_threads", "Number of OS threads in the process."),
            start_time: start,
            descs: Vec::new(),
        };
        let descs = c
            .parts()
            .iter()
            .flat_map(|p| p.desc().into_iter().cloned())
            .collect();
        ProcessCollector { descs, ..c }
    }

    fn parts(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu,
            &self.resident,
            &self.virt,
            &self.open_fds,
            &self.max_fds,
            &self.threads,
            &self.start_time,
        ]
    }

    fn refresh(&self) {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            let total = secs(usage.ru_utime) + secs(usage.ru_stime);
            let delta = total - self.cpu.get();
            if delta > 0.0 {
                self.cpu.inc_by(delta);
            }
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as i64;
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let mut f = statm
                .split_whitespace()
                .map(|v| v.parse::<i64>().unwrap_or(0));
            self.virt.set(f.next().unwrap_or(0) * page);
            self.resident.set(f.next().unwrap_or(0) * page);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle itself is one of them.
            self.open_fds.set(dir.count().saturating_sub(1) as i64);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            self.threads.set(dir.count() as i64);
        }
        let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: getrlimit only writes the struct it is given.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            self.max_fds.set(limit.rlim_cur.min(i64::MAX as u64) as i64);
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.parts().iter().flat_map(|p| p.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_have_sub_second_precision() {
        let c = ProcessCollector::new(1.0);
        // Burn a little CPU: well under a second.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let families = c.collect();
        let cpu = families
            .iter()
            .find(|f| f.name() == "process_cpu_seconds_total")
            .expect("cpu family");
        let v = cpu.get_metric()[0].get_counter().get_value();
        assert!(v > 0.0 && v.fract() != 0.0, "{v}");
        assert!(families
            .iter()
            .any(|f| f.name() == "process_resident_memory_bytes"));
        assert_eq!(families.len(), 7);
    }
}
