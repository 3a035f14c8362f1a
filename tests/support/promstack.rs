//! Real Prometheus and Alertmanager (Debian packages `prometheus`, `prometheus-alertmanager`) started on free
//! loopback ports in a temporary directory, plus a webhook receiver that records Alertmanager's notifications.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Path of a tool, or `None` (then the caller skips outside CI and fails in CI).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The tool or, outside CI, `None` with a warning; in CI a missing tool fails the test.
pub fn require(name: &str, package: &str) -> Option<PathBuf> {
    match tool(name) {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => panic!("{name} is missing and CI is set: install Debian {package}"),
        None => {
            eprintln!("WARNING: {name} not on PATH (Debian {package}); skipping");
            None
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gce-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop; its output goes to a log file kept for failure messages.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err)).spawn().expect("spawn");
        Proc { child, log }
    }
    pub fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Prometheus.
pub struct Prometheus {
    pub url: String,
    pub proc: Proc,
    http: reqwest::Client,
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (host:port) every second with `rule_files` loaded and alerts sent to
    /// `alertmanager` (host:port), if any.
    pub async fn start(
        dir: &TempDir,
        targets: &[String],
        rule_files: &[PathBuf],
        alertmanager: Option<&str>,
    ) -> Prometheus {
        let bin = tool("prometheus").expect("prometheus binary");
        let port = free_port();
        let rules: Vec<String> = rule_files.iter().map(|p| format!("  - {}", p.display())).collect();
        let am = alertmanager
            .map(|a| format!("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{a}']\n"))
            .unwrap_or_default();
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{am}rule_files:\n{}\nscrape_configs:\n  - job_name: genesys-cloud-exporter\n    static_configs:\n      - targets: [{}]\n",
            if rules.is_empty() { "  []".to_owned() } else { rules.join("\n") },
            targets.join(", ")
        );
        let cfg = dir.write("prometheus.yml", &config);
        let data = dir.0.join("prom-data");
        let proc = Proc::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn"),
            dir.0.join("prometheus.log"),
        );
        let p = Prometheus { url: format!("http://127.0.0.1:{port}"), proc, http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = p.http.get(format!("{}/-/ready", p.url)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "Prometheus did not become ready:\n{}", p.proc.log_tail());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        p
    }

    /// An instant query: `Ok(result array)` or `Err(error text)`.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", expr)])
            .map_err(|e| e.to_string())?;
        let r = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if v["status"] != "success" {
            return Err(format!("{}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Wait until `expr` returns at least one series.
    pub async fn until_nonempty(&self, expr: &str, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = self.query(expr).await {
                if !r.is_empty() {
                    return r;
                }
            }
            assert!(Instant::now() < deadline, "{expr} stayed empty for {within:?}:\n{}", self.proc.log_tail());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Every notification body Alertmanager posted to the webhook.
#[derive(Clone, Default)]
pub struct Webhook {
    pub received: Arc<Mutex<Vec<Value>>>,
    pub addr: String,
}

impl Webhook {
    /// A minimal HTTP/1.1 server that records JSON bodies and answers 200.
    pub async fn start() -> Webhook {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind webhook");
        let addr = l.local_addr().expect("webhook addr").to_string();
        let hook = Webhook { received: Arc::default(), addr };
        let received = hook.received.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = s.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let Some(head_end) = find(&buf, b"\r\n\r\n") else { continue };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() < head_end + 4 + len {
                            continue;
                        }
                        let body = &buf[head_end + 4..head_end + 4 + len];
                        if let Ok(v) = serde_json::from_slice::<Value>(body) {
                            received.lock().unwrap_or_else(|e| e.into_inner()).push(v);
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                });
            }
        });
        hook
    }

    pub fn all(&self) -> Vec<Value> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A running Alertmanager delivering every alert to `webhook` quickly (test timings).
pub struct Alertmanager {
    pub addr: String,
    pub proc: Proc,
}

impl Alertmanager {
    pub async fn start(dir: &TempDir, webhook: &Webhook) -> Alertmanager {
        let bin = tool("prometheus-alertmanager").or_else(|| tool("alertmanager")).expect("alertmanager binary");
        let port = free_port();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'queue_id']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{}/\n        send_resolved: true\n",
            webhook.addr
        );
        let cfg = dir.write("alertmanager.yml", &config);
        let proc = Proc::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.path={}", dir.0.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn"),
            dir.0.join("alertmanager.log"),
        );
        let am = Alertmanager { addr: format!("127.0.0.1:{port}"), proc };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("http://{}/-/ready", am.addr)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "Alertmanager did not become ready:\n{}", am.proc.log_tail());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        am
    }
}

/// The rule files shipped in `alerts/` (not the tests, not the Alertmanager example).
pub fn shipped_rule_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("alerts"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        p.is_file()
            && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("alertmanager"))
    });
    v.sort();
    v
}
