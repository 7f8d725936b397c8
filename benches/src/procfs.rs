//! A server's CPU time and peak memory, read from `/proc/<pid>` (Linux only).

use std::path::Path;
use std::process::Command;

/// Clock ticks per second when `getconf CLK_TCK` cannot say; Linux's usual value.
const DEFAULT_CLK_TCK: f64 = 100.0;

/// Clock ticks per second, as `/proc/<pid>/stat` counts CPU time.
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(DEFAULT_CLK_TCK)
}

/// User plus system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    cpu_seconds_from_stat(&stat, clock_ticks_per_second())
}

/// Parses `utime` and `stime` (fields 14 and 15) from a `/proc/<pid>/stat` line.
pub fn cpu_seconds_from_stat(stat: &str, ticks: f64) -> anyhow::Result<f64> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = stat.rfind(')').map(|i| &stat[i + 1..]).ok_or_else(|| anyhow::anyhow!("no ')' in stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let field = |n: usize| -> anyhow::Result<f64> {
        Ok(fields.get(n - 3).ok_or_else(|| anyhow::anyhow!("stat has no field {n}"))?.parse::<f64>()?)
    };
    Ok((field(14)? + field(15)?) / ticks)
}

/// Peak resident set size in bytes (`VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    status_kib(&Path::new("/proc").join(pid.to_string()).join("status"), "VmHWM:").map(|k| k * 1024)
}

fn status_kib(path: &Path, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(path)?;
    parse_status_kib(&status, key).ok_or_else(|| anyhow::anyhow!("{key} missing in {}", path.display()))
}

/// The kB figure of `key` (e.g. `VmHWM:`) in a `/proc/<pid>/status` text.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Disk usage of everything under `dir` in bytes (allocated blocks, as `du` counts).
pub fn dir_usage_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_usage_bytes(&e.path()),
            // st_blocks counts 512-byte units whatever the filesystem's block size.
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert_eq!(cpu_seconds_from_stat(stat, 100.0).unwrap(), 3.0);
        assert!(cpu_seconds_from_stat("garbage", 100.0).is_err());
        assert!(cpu_seconds_from_stat("1 (x) S 1", 100.0).is_err());
    }

    #[test]
    fn status_kib_and_own_process() {
        assert_eq!(parse_status_kib("Name:\tx\nVmHWM:\t  2048 kB\n", "VmHWM:"), Some(2048));
        assert_eq!(parse_status_kib("Name:\tx\n", "VmHWM:"), None);
        let me = std::process::id();
        assert!(peak_rss_bytes(me).unwrap() > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
    }

    #[test]
    fn dir_usage_counts_nested_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/f"), vec![1u8; 10_000]).unwrap();
        assert!(dir_usage_bytes(d.path()) >= 10_000);
        assert_eq!(dir_usage_bytes(&d.path().join("missing")), 0);
    }
}
