//! Numbers for people, as the live page shows them: `1.2M`, `35k/s`,
//! `12 min left`, `8.5 ms`.

/// A count: exact below 10 000, then `12.3k`, `1.2M`, `3.4G`.
pub fn count(n: f64) -> String {
    let n = n.max(0.0);
    if n < 10_000.0 {
        return format!("{}", n.round() as u64);
    }
    let (v, unit) = if n < 1e6 {
        (n / 1e3, "k")
    } else if n < 1e9 {
        (n / 1e6, "M")
    } else {
        (n / 1e9, "G")
    };
    if v < 100.0 {
        format!("{:.1}{unit}", (v * 10.0).floor() / 10.0)
    } else {
        format!("{:.0}{unit}", v.floor())
    }
}

/// A rate in records per second: `35k/s`, `120/s`, `0.5/s`.
pub fn rate(per_second: f64) -> String {
    if per_second > 0.0 && per_second < 10.0 {
        return format!("{:.1}/s", per_second);
    }
    format!("{}/s", count(per_second))
}

/// A length of time: `45 s`, `12 min`, `1 h 05 min`, `2 d 3 h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=3599 => format!("{} min", (s + 30) / 60),
        3600..=172_799 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// An elapsed time as a clock: `0:42`, `12:05`, `1:02:03`.
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    }
}

/// The time of day of a Unix time, UTC: `14:05:09`.
pub fn clock_of_day(unix: f64) -> String {
    let s = unix.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// A short latency: `850 µs`, `8.5 ms`, `120 ms`, `2.4 s`.
pub fn latency(secs: f64) -> String {
    if secs < 0.001 {
        format!("{:.0} µs", secs * 1e6)
    } else if secs < 0.01 {
        format!("{:.1} ms", secs * 1e3)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else {
        format!("{secs:.1} s")
    }
}

/// A byte size: `512 B`, `3.2 MiB`, `1.1 GiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n.max(0.0);
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_say_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (999.0, "999"),
            (9_999.0, "9999"),
            (12_345.0, "12.3k"),
            (35_000.0, "35.0k"),
            (123_456.0, "123k"),
            (1_234_567.0, "1.2M"),
            (999_999_999.0, "999M"),
            (3.4e9, "3.4G"),
        ];
        for (n, want) in cases {
            assert_eq!(count(*n), *want, "{n}");
        }
        assert_eq!(rate(35_200.0), "35.2k/s");
        assert_eq!(rate(0.5), "0.5/s");
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(720.0), "12 min");
        assert_eq!(duration(3900.0), "1 h 05 min");
        assert_eq!(duration(3580.0), "60 min");
        assert_eq!(duration(2.0 * 86_400.0 + 3.0 * 3600.0), "2 d 3 h");
        assert_eq!(clock(42.0), "0:42");
        assert_eq!(clock(3723.0), "1:02:03");
        assert_eq!(clock_of_day(1_767_225_600.0 + 3723.0), "01:02:03");
        assert_eq!(latency(0.0085), "8.5 ms");
        assert_eq!(latency(0.12), "120 ms");
        assert_eq!(latency(0.00085), "850 µs");
        assert_eq!(bytes(3.2 * 1024.0 * 1024.0), "3.2 MiB");
    }
}
