//! Kubernetes' `duration.HumanDuration` and the `translateTimestampSince`
//! helpers the printers use for ages.

use jiff::Timestamp;

const NS_PER_SEC: i128 = 1_000_000_000;

/// A duration in nanoseconds rendered as `HumanDuration` does: exact
/// seconds under two minutes, then coarser units (`3m20s`, `10m`, `2h5m`,
/// `8h`, `2d3h`, `30d`, `2y45d`, `9y`). Up to two seconds into the future
/// reads as `0s`; further is `<invalid>`.
pub fn human_duration(nanos: i128) -> String {
    let seconds = nanos / NS_PER_SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / (60 * NS_PER_SEC);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / (3600 * NS_PER_SEC);
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Nanoseconds from `then` to `now`.
pub fn since(then: Timestamp, now: Timestamp) -> i128 {
    now.as_nanosecond() - then.as_nanosecond()
}

/// `translateTimestampSince`: the age of a timestamp field, `<unknown>`
/// when it is absent or unparsable.
pub fn age(timestamp: Option<&str>, now: Timestamp) -> String {
    match timestamp.and_then(|t| t.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(since(t, now)),
        None => "<unknown>".to_string(),
    }
}
