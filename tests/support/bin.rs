//! The real binary as a child process: spawn it with exactly the given environment, find the address it serves
//! on (from its JSON logs), signal it, and time how long it takes to exit.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_genesys-cloud-exporter");

pub struct Proc {
    pub child: Child,
    /// Everything written to stderr so far.
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    /// The pipe readers: joined once the child has exited, so its last output is in `stderr`/`stdout`.
    drains: Vec<std::thread::JoinHandle<()>>,
}

/// Environment pointing the exporter at a simulator with `secret` as its client secret.
pub fn sim_env(base_url: &str, secret: &str) -> Vec<(String, String)> {
    vec![
        ("GENESYS_CLIENT_ID".into(), "sim-client".into()),
        ("GENESYS_CLIENT_SECRET".into(), secret.into()),
        ("GENESYS_API_BASE_URL".into(), base_url.into()),
        ("GENESYS_LOGIN_BASE_URL".into(), base_url.into()),
    ]
}

fn drain(mut r: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

impl Proc {
    /// Start the binary with `args` and only `env` (plus PATH); stdout and stderr are collected.
    pub fn spawn(args: &[&str], env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the exporter binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let drains = vec![
            drain(child.stderr.take().unwrap(), stderr.clone()),
            drain(child.stdout.take().unwrap(), stdout.clone()),
        ];
        Proc { child, stderr, stdout, drains }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The address of the "serving metrics" log line (needs `--log.format json`), waiting up to `within`.
    pub fn listen_addr(&mut self, within: Duration) -> SocketAddr {
        let deadline = Instant::now() + within;
        loop {
            for line in self.stderr().lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                if v["message"] == "serving metrics" {
                    if let Some(a) = v["address"].as_str().and_then(|a| a.parse().ok()) {
                        return a;
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the exporter exited ({status}) before serving:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no `serving metrics` line within {within:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a signal (`TERM`, `INT`, `HUP`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Wait for the exit; `None` (and the child killed) if it takes longer than `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let took = started.elapsed();
                // The pipes end with the child; without the join its last lines could still be unread.
                for d in self.drains.drain(..) {
                    let _ = d.join();
                }
                return Some((status, took));
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of `logs` (JSON, one object per line) whose `message` contains `what`.
pub fn log_lines(logs: &str, what: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(what)))
        .collect()
}
