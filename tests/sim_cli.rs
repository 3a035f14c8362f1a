//! `genesys-cloud-exporter simulate`: the binary starts, prints how to use it, answers over HTTP, applies its
//! scenario file, and refuses a broken scenario file.

#[path = "common/sim.rs"]
mod sim;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_genesys-cloud-exporter");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn simulate_command_serves_and_applies_its_scenario() {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.yaml");
    std::fs::write(
        &scenario,
        "# a queue appears, then arrivals stop\n- at: 0.3\n  fault: {kind: add_queue, name: CLI Scenario Queue}\n- at: 0.5\n  fault:\n    kind: set_arrivals\n    per_hour: 0\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["simulate", "--listen", &format!("127.0.0.1:{port}"), "--queues", "3", "--agents-per-queue", "2"])
        .args(["--speed", "5", "--heartbeat-seconds", "0.5", "--scenario"])
        .arg(&scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the binary");
    let stdout = child.stdout.take().unwrap();
    let _guard = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !printed.contains("Ctrl-C") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                printed.push_str(&l);
                printed.push('\n');
            }
            Err(_) => panic!("simulate did not print its usage; got {printed:?}"),
        }
    }
    assert!(printed.contains(&base), "prints its URL: {printed}");
    assert!(printed.contains("GENESYS_CLIENT_ID=sim-client"), "{printed}");

    let c = sim::http();
    let t = sim::token_at(&c, &base).await;
    let r = sim::get(&c, &format!("{base}/api/v2/routing/queues"), &t).await;
    assert_eq!(r.status, 200);
    sim::assert_rate_headers(&r);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let truth = sim::send(&c, reqwest::Method::GET, &format!("{base}/sim/truth"), None, None).await.json();
        let names: Vec<&str> =
            truth["queues"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
        if names.contains(&"CLI Scenario Queue") {
            assert_eq!(names.len(), 4, "--queues 3, plus the scenario's: {names:?}");
            break;
        }
        assert!(Instant::now() < deadline, "scenario step applied: {names:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = sim::send(&c, reqwest::Method::GET, &format!("{base}/sim/stats"), None, None).await.json();
        if st["faults"]["set_arrivals"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "second step applied: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The WebSocket is on the same port and heartbeats at the configured interval.
    let ch = sim::send(&c, reqwest::Method::POST, &format!("{base}/api/v2/notifications/channels"), Some(&t), None)
        .await
        .json();
    let mut ws = sim::connect(ch["connectUri"].as_str().unwrap()).await;
    sim::wait_text(&mut ws, Duration::from_secs(3), "heartbeat", sim::is_heartbeat).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_refuses_a_broken_scenario_file() {
    let dir = std::env::temp_dir().join(format!("sim-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("bad.yaml");
    std::fs::write(&scenario, "- at: 1\n  fault: {kind: no_such_fault}\n").unwrap();
    let port = free_port();
    let out = Command::new(BIN)
        .args(["simulate", "--listen", &format!("127.0.0.1:{port}"), "--scenario"])
        .arg(&scenario)
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scenario"), "names the problem: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
