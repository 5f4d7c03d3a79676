//! Figures collected by the run, and the table printed at the end.

use std::time::Duration;

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of some samples (sorts them).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Nearest-rank percentile `p` (0..=1) of `samples` (sorts them); NaN if empty.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = (p * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Resident memory of the server process around the creates.
pub struct Memory {
    /// RSS before the measured creates (after the warm-up).
    pub rss_before: u64,
    /// RSS after them, with the client load released.
    pub rss_after: u64,
    /// How many objects were created in between.
    pub objects: usize,
    /// Mean size of a stored object's JSON, as the server returned it.
    pub json_per_object: f64,
}

impl Memory {
    fn per_object(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.objects as f64
    }
}

/// Watch latency figures, in milliseconds.
pub struct WatchStats {
    /// Events received.
    pub samples: usize,
    /// Events never received (within the deadline).
    pub missing: usize,
    /// Events that arrived before their write's response.
    pub before_ack: usize,
    /// Acknowledged to received, p50.
    pub p50_ack: f64,
    /// Acknowledged to received, p99.
    pub p99_ack: f64,
    /// Acknowledged to received, worst.
    pub max_ack: f64,
    /// Request sent to received, p50.
    pub p50_sent: f64,
    /// Request sent to received, p99.
    pub p99_sent: f64,
    /// Write round trip, p50.
    pub write_p50: f64,
    /// Write round trip, p99.
    pub write_p99: f64,
}

/// Everything measured; `None` where a part did not run.
#[derive(Default)]
pub struct Report {
    pub objects: usize,
    pub clients: usize,
    pub creates: Option<f64>,
    pub cpu_per_create: Option<Duration>,
    pub patches: Option<f64>,
    pub cpu_per_patch: Option<Duration>,
    pub list_full: Option<Duration>,
    pub list_paged: Option<Duration>,
    pub list_bytes: usize,
    pub watch: Option<WatchStats>,
    pub memory: Option<Memory>,
    pub rss_after_lists: Option<u64>,
    pub idle_cpu: Option<f64>,
    pub rss_end: Option<u64>,
    pub start_in_process: Option<Duration>,
    pub start_first_in_process: Option<Duration>,
    pub start_process: Option<Duration>,
    pub restart_with_data: Option<Duration>,
    pub etcd_creates: Option<f64>,
    pub etcd_cpu_per_create: Option<Duration>,
    pub etcd_range: Option<Duration>,
    pub etcd_version: String,
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn row(what: &str, ours: &str, etcd: &str, target: &str) {
    println!("| {what:<52} | {ours:>14} | {etcd:>14} | {target:<34} |");
}

impl Report {
    /// Prints the table (Markdown, so it pastes into docs/benchmarks.md).
    pub fn print(&self, settings: &str) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!();
        println!(
            "API server bench: {settings}; load average at the end {}",
            load.join(" ")
        );
        println!();
        row("measure", "fedmesh", "etcd", "target / ratio");
        row(
            &"-".repeat(52),
            &"-".repeat(14),
            &"-".repeat(14),
            &"-".repeat(34),
        );
        let dash = "-".to_owned();
        if let Some(c) = self.creates {
            let (etcd, ratio) = match self.etcd_creates {
                Some(e) => (
                    format!("{e:.0}"),
                    format!("x{:.2} of etcd: {}", c / e, met(c >= e)),
                ),
                None => ("not run".into(), "etcd not installed".into()),
            };
            row(
                "creates/s, 16 clients (~1 KB Endpoints, fsync)",
                &format!("{c:.0}"),
                &etcd,
                &ratio,
            );
        }
        if let Some(c) = self.cpu_per_create {
            let etcd = self
                .etcd_cpu_per_create
                .map_or(dash.clone(), |e| format!("{:.0}", e.as_secs_f64() * 1e6));
            row(
                "server CPU per create, us (user + system)",
                &format!("{:.0}", c.as_secs_f64() * 1e6),
                &etcd,
                "",
            );
        }
        if let Some(p) = self.patches {
            row(
                &format!("merge patches/s, {} clients", self.clients),
                &format!("{p:.0}"),
                &dash,
                "",
            );
        }
        if let Some(c) = self.cpu_per_patch {
            row(
                "server CPU per merge patch, us",
                &format!("{:.0}", c.as_secs_f64() * 1e6),
                &dash,
                "",
            );
        }
        if let Some(l) = self.list_full {
            let etcd = self
                .etcd_range
                .map_or(dash.clone(), |d| format!("{:.1}", ms(d)));
            row(
                &format!(
                    "list {} Endpoints, unpaged, ms ({:.1} MB)",
                    self.objects,
                    self.list_bytes as f64 / 1e6
                ),
                &format!("{:.1}", ms(l)),
                &etcd,
                "etcd: one range read of the keys",
            );
        }
        if let Some(l) = self.list_paged {
            row(
                &format!("list {} Endpoints, pages of 500, ms", self.objects),
                &format!("{:.1}", ms(l)),
                &dash,
                "",
            );
        }
        if let Some(w) = &self.watch {
            row(
                "watch latency p50, ack -> event, ms",
                &format!("{:.2}", w.p50_ack),
                &dash,
                "",
            );
            row(
                "watch latency p99, ack -> event, ms",
                &format!("{:.2}", w.p99_ack),
                &dash,
                &format!("< 5 ms: {}", met(w.p99_ack < 5.0)),
            );
            row(
                "watch latency max, ack -> event, ms",
                &format!("{:.2}", w.max_ack),
                &dash,
                "",
            );
            row(
                "watch latency p50 / p99, request sent -> event, ms",
                &format!("{:.2} / {:.2}", w.p50_sent, w.p99_sent),
                &dash,
                "",
            );
            row(
                "watch: write round trip p50 / p99, ms",
                &format!("{:.2} / {:.2}", w.write_p50, w.write_p99),
                &dash,
                "",
            );
            row(
                "watch: events received / before ack / missing",
                &format!("{} / {} / {}", w.samples, w.before_ack, w.missing),
                &dash,
                "",
            );
        }
        if let Some(m) = &self.memory {
            let per = m.per_object();
            let beyond = per - m.json_per_object;
            let json = m.json_per_object;
            row(
                "stored JSON per object, bytes",
                &format!("{json:.0}"),
                &dash,
                "",
            );
            row(
                "server RSS growth per stored object, bytes",
                &format!("{per:.0}"),
                &dash,
                "",
            );
            row(
                "  of which beyond the object's JSON, bytes",
                &format!("{beyond:.0}"),
                &dash,
                &format!("< 1024: {}", met(beyond < 1024.0)),
            );
            let mb = |r: Option<u64>| r.map_or(dash.clone(), |r| format!("{:.0}", r as f64 / 1e6));
            row(
                "server RSS MB: before/after creates, lists, end",
                &format!(
                    "{} / {} / {} / {}",
                    mb(Some(m.rss_before)),
                    mb(Some(m.rss_after)),
                    mb(self.rss_after_lists),
                    mb(self.rss_end)
                ),
                &dash,
                "",
            );
        }
        if let Some(c) = self.idle_cpu {
            row(
                &format!(
                    "server CPU while idle with {} objects, % of a core",
                    self.objects
                ),
                &format!("{:.0}", c * 100.0),
                &dash,
                "",
            );
        }
        if let Some(d) = self.start_process {
            row(
                "cold start, process spawn -> /readyz 200, ms",
                &format!("{:.1}", ms(d)),
                &dash,
                &format!("< 200 ms: {}", met(ms(d) < 200.0)),
            );
        }
        if let Some(d) = self.start_in_process {
            let first = self.start_first_in_process.map_or(0.0, ms);
            row(
                "cold start, in-process builder -> /readyz, ms",
                &format!("{:.1}", ms(d)),
                &dash,
                &format!("first of 5: {first:.1} ms"),
            );
        }
        if let Some(d) = self.restart_with_data {
            row(
                "start on the bench's data, process -> /readyz, ms",
                &format!("{:.1}", ms(d)),
                &dash,
                "",
            );
        }
        if !self.etcd_version.is_empty() {
            println!();
            println!("etcd: {}", self.etcd_version);
        }
    }
}
