//! Runs rule groups: one thread per group on its interval, (re)loading rule files
//! atomically and keeping the state of unchanged rules across reloads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use crate::file::{GroupSpec, load_file};
use crate::group::{EvalEnv, Group};
use crate::metrics::group_key;
use crate::notifier::{Notifier, PostableAlert};

/// Prometheus's default `global.evaluation_interval`.
pub const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 60_000;
/// Evaluations after startup before `for` state is restored (Prometheus waits for
/// a second evaluation so recording rules have fresh data).
const EVALS_BEFORE_RESTORE: u32 = 2;

/// Rule-file settings that a reload may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleFilesConfig {
    /// `rule_files` globs.
    pub patterns: Vec<String>,
    /// Relative patterns resolve against this directory (the config file's).
    pub base_dir: Option<PathBuf>,
    /// `global.evaluation_interval` in ms.
    pub default_interval_ms: i64,
    /// `global.rule_query_offset` in ms.
    pub default_query_offset_ms: i64,
}

/// Current time in Unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

struct Runner {
    group: Mutex<Group>,
    stopped: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runner {
    /// Sleeps until `t` (Unix ms); false if stopped meanwhile.
    fn sleep_until(&self, t: i64) -> bool {
        let mut stopped = self.stopped.lock();
        loop {
            if *stopped {
                return false;
            }
            let now = now_ms();
            if now >= t {
                return true;
            }
            self.wake.wait_for(&mut stopped, Duration::from_millis((t - now) as u64));
        }
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

/// Owns the running groups.
pub struct Manager {
    env: Arc<EvalEnv>,
    notifier: Option<Arc<Notifier>>,
    groups: Mutex<Vec<Arc<Runner>>>,
    /// Serialises reloads.
    reload: Mutex<bool>,
}

impl Manager {
    /// A manager with no groups yet.
    pub fn new(env: EvalEnv, notifier: Option<Arc<Notifier>>) -> Manager {
        Manager { env: Arc::new(env), notifier, groups: Mutex::new(Vec::new()), reload: Mutex::new(false) }
    }

    /// The notifier, if Alertmanagers are configured.
    pub fn notifier(&self) -> Option<&Arc<Notifier>> {
        self.notifier.as_ref()
    }

    /// Loads every file the patterns match and swaps the groups in. Any error leaves
    /// the running groups untouched. Unchanged groups keep running; changed ones keep
    /// the alert state of rules with the same name.
    pub fn load(&self, cfg: &RuleFilesConfig) -> Result<(), Vec<String>> {
        let specs = load_specs(cfg)?;
        let mut loaded_before = self.reload.lock();
        let first_load = !*loaded_before;
        let mut groups = self.groups.lock();
        let mut old: HashMap<(String, String), Arc<Runner>> = groups
            .drain(..)
            .map(|r| {
                let key = {
                    let g = r.group.lock();
                    (g.file.clone(), g.name.clone())
                };
                (key, r)
            })
            .collect();
        let mut next = Vec::with_capacity(specs.len());
        for spec in &specs {
            let key = (spec.file.clone(), spec.name.clone());
            let mut group =
                Group::from_spec(spec, cfg.default_interval_ms, cfg.default_query_offset_ms, !first_load);
            if let Some(prev) = old.remove(&key) {
                if prev.group.lock().fingerprint == group.fingerprint {
                    next.push(prev);
                    continue;
                }
                prev.stop();
                group.copy_state_from(&prev.group.lock());
            }
            self.env.metrics.group_started(
                &group_key(&spec.file, &spec.name),
                group.interval_ms as f64 / 1000.0,
                group.rules.len(),
            );
            next.push(self.start(group, first_load));
        }
        for (_, gone) in old {
            gone.stop();
            let g = gone.group.lock();
            g.mark_all_stale(&self.env, now_ms());
            self.env.metrics.group_removed(&group_key(&g.file, &g.name));
        }
        *groups = next;
        *loaded_before = true;
        tracing::info!(groups = groups.len(), "rule groups loaded");
        Ok(())
    }

    fn start(&self, group: Group, restore: bool) -> Arc<Runner> {
        let runner = Arc::new(Runner {
            group: Mutex::new(group),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            thread: Mutex::new(None),
        });
        let (r, env, notifier) = (runner.clone(), self.env.clone(), self.notifier.clone());
        let name = format!("rules-{}", runner.group.lock().name);
        match std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&r, &env, notifier.as_deref(), restore))
        {
            Ok(t) => *runner.thread.lock() = Some(t),
            Err(e) => tracing::error!(error = %e, "could not start a rule group thread"),
        }
        runner
    }

    /// A snapshot of every group with its rules and alerts, in load order.
    pub fn groups(&self) -> Vec<Group> {
        self.groups.lock().iter().map(|r| r.group.lock().clone()).collect()
    }

    /// Stops every group, then drains and stops the notifier.
    pub fn stop(&self) {
        let groups: Vec<_> = self.groups.lock().drain(..).collect();
        for g in groups {
            g.stop();
        }
        if let Some(n) = &self.notifier {
            n.stop();
        }
    }
}

/// Loads all rule files named by the patterns; groups in file order.
pub fn load_specs(cfg: &RuleFilesConfig) -> Result<Vec<GroupSpec>, Vec<String>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for p in &cfg.patterns {
        let pattern = match &cfg.base_dir {
            Some(dir) if !std::path::Path::new(p).is_absolute() => dir.join(p).display().to_string(),
            _ => p.clone(),
        };
        match glob::glob(&pattern) {
            Ok(paths) => {
                for path in paths {
                    match path {
                        Ok(path) => files.push(path),
                        Err(e) => errors.push(format!("{pattern}: {e}")),
                    }
                }
            }
            Err(e) => errors.push(format!("rule_files: invalid pattern {pattern:?}: {e}")),
        }
    }
    files.sort();
    files.dedup();
    let mut specs = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(mut g) => specs.append(&mut g),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(specs) } else { Err(errors) }
}

/// A group's life: wait for each slot, evaluate, notify; count skipped slots.
fn run(runner: &Runner, env: &EvalEnv, notifier: Option<&Notifier>, restore: bool) {
    let (interval, mut next, key) = {
        let g = runner.group.lock();
        (g.interval_ms, g.slot_at_or_before(now_ms()) + g.interval_ms, group_key(&g.file, &g.name))
    };
    let mut evals_before_restore = if restore { EVALS_BEFORE_RESTORE } else { 0 };
    loop {
        if !runner.sleep_until(next) {
            return;
        }
        let missed = (now_ms() - next) / interval;
        if missed > 0 {
            env.metrics.missed(&key, missed as u64);
            tracing::warn!(group = %key[0].1, missed, "rule group evaluation overran its interval; skipped iterations");
            next += missed * interval;
        }
        let mut group = runner.group.lock();
        let outgoing = group.eval(next, env);
        if evals_before_restore > 0 {
            evals_before_restore -= 1;
            if evals_before_restore == 0 {
                group.restore_for_state(now_ms(), env);
            }
        }
        drop(group);
        if let Some(n) = notifier {
            let alerts: Vec<PostableAlert> = outgoing
                .iter()
                .flat_map(|o| {
                    o.alerts.iter().map(|a| PostableAlert::from_alert(a, &o.expr, &env.external_url))
                })
                .collect();
            n.send(alerts);
        }
        next += interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RuleMetrics;
    use vigil_query::Engine;
    use vigil_storage::memory::MemStorage;

    fn manager() -> Manager {
        let env = EvalEnv {
            storage: Arc::new(MemStorage::new()),
            engine: Engine::default(),
            external_labels: Default::default(),
            external_url: "http://v".into(),
            resend_delay_ms: 60_000,
            for_outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            metrics: Arc::new(RuleMetrics::default()),
        };
        Manager::new(env, None)
    }

    #[test]
    fn reload_keeps_unchanged_groups_and_rejects_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.yml");
        let good = "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: r\n        expr: vector(1)\n";
        std::fs::write(&file, good).expect("write");
        let cfg = RuleFilesConfig {
            patterns: vec!["*.yml".into()],
            base_dir: Some(dir.path().to_path_buf()),
            default_interval_ms: DEFAULT_EVALUATION_INTERVAL_MS,
            default_query_offset_ms: 0,
        };
        let m = manager();
        m.load(&cfg).expect("load");
        let first = m.groups.lock()[0].clone();
        m.load(&cfg).expect("reload");
        assert!(Arc::ptr_eq(&first, &m.groups.lock()[0]), "unchanged group keeps running");
        std::fs::write(&file, "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: (\n")
            .expect("write");
        let errs = m.load(&cfg).expect_err("bad file");
        assert!(errs[0].contains("could not parse expression"), "{errs:?}");
        assert!(Arc::ptr_eq(&first, &m.groups.lock()[0]), "old rules keep running");
        std::fs::write(&file, good.replace("vector(1)", "vector(2)")).expect("write");
        m.load(&cfg).expect("changed");
        assert!(!Arc::ptr_eq(&first, &m.groups.lock()[0]));
        assert_eq!(m.groups()[0].rules[0].rule.expr(), "vector(2)");
        m.stop();
    }

    #[test]
    fn groups_evaluate_on_their_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("a.yml"),
            "groups:\n  - name: fast\n    interval: 100ms\n    rules:\n      - record: r\n        expr: vector(1)\n",
        )
        .expect("write");
        let cfg = RuleFilesConfig {
            patterns: vec![dir.path().join("*.yml").display().to_string()],
            base_dir: None,
            default_interval_ms: DEFAULT_EVALUATION_INTERVAL_MS,
            default_query_offset_ms: 0,
        };
        let m = manager();
        m.load(&cfg).expect("load");
        std::thread::sleep(Duration::from_millis(450));
        let g = m.groups().remove(0);
        m.stop();
        let last = g.last_eval_ms.expect("evaluated");
        assert_eq!(last % 100, g.slot_at_or_before(last) % 100, "on its slot");
        assert_eq!(g.rules[0].health, crate::group::Health::Ok);
    }
}
