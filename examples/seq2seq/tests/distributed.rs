//! Data-parallel seq2seq between processes on 127.0.0.1, an orchestrator served by node 0: the
//! parameters of a run of one; a killed peer stops the other within its timeout and leaves a
//! checkpoint that resumes; a peer started with another model is refused before training; a
//! node whose port is taken says so.

use burn::backend::NdArray;
use rensa_models::seq2seq::Seq2SeqConfig;
use rensa_nn::recurrent::RnnConfig;
use rensa_train::Checkpoints;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_seq2seq");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rensa-s2s-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A port nobody listens on now, one this process has not handed out before (the tests run in
/// parallel, and a port is free again once its probe has closed it, before the child that was
/// given it binds it), and one outside the kernel's ephemeral range: ports from that range are
/// what every `bind(…:0)` and every outgoing connection on the machine takes, so one could be
/// taken between this probe and the child's bind. Falls back to the system's choice when the
/// ephemeral range leaves no room (Linux's default is 32768-60999).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u32>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let outside = if lo >= 12_000 {
        Some(10_000..lo)
    } else if hi <= 63_000 {
        Some(hi + 1..65_536)
    } else {
        None
    };
    // a different walk in every process (another run of this binary may be going on)
    let mut state = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    loop {
        let port = match &outside {
            Some(range) => {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let span = u64::from(range.end - range.start);
                (u64::from(range.start) + (state >> 33) % span) as u16
            }
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port(),
        };
        if given.contains(&port) {
            continue;
        }
        // the nodes serve on every interface
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// Node `id` of two, with `extra` options.
fn node(id: usize, orchestrator: u16, out: &Path, extra: &[&str]) -> Child {
    let address = format!("ws://127.0.0.1:{}", free_port());
    Command::new(BIN)
        .args(["--nodes", "2", "--node-id", &id.to_string()])
        .args(["--orchestrator", &format!("ws://127.0.0.1:{orchestrator}")])
        .args(["--node-address", &address])
        .args(["--out", out.to_str().unwrap(), "--quiet", "--threads", "1"])
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The float parameters of the newest checkpoint's model in `out`, in visiting order.
fn parameters(out: &Path) -> Vec<f64> {
    let device = Default::default();
    let saved = Checkpoints::new(out, 1)
        .latest()
        .unwrap()
        .expect("a checkpoint");
    let model = Seq2SeqConfig::new(10)
        .init::<NdArray, RnnConfig>(&device)
        .unwrap();
    let model =
        rensa_train::load_model(model, &saved.model_file().with_extension(""), &device).unwrap();
    rensa_testkit::parameters(&model)
}

#[test]
fn two_processes_end_with_the_parameters_of_a_run_of_one() {
    let (alone, two) = (dir("alone"), dir("two"));
    let epochs = ["--epochs", "3"];
    let (ok, stdout, stderr) = rensa_launch::run_program(
        BIN,
        &[&epochs[..], &["--out", alone.to_str().unwrap(), "--quiet"]].concat(),
    );
    assert!(ok, "{stdout}{stderr}");
    // two peers on threads of one process
    let threads = dir("threads");
    let (ok, stdout, stderr) = rensa_launch::run_program(
        BIN,
        &[
            &epochs[..],
            &[
                "--peers",
                "2",
                "--out",
                threads.to_str().unwrap(),
                "--quiet",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("data-parallel: 2 peers"), "{stdout}");
    let port = free_port();
    let other = dir("two-node1");
    let n1 = node(1, port, &other, &epochs);
    let n0 = node(0, port, &two, &epochs);
    let (ok0, text0) = finish(n0);
    let (ok1, text1) = finish(n1);
    assert!(ok0 && ok1, "node 0: {text0}\nnode 1: {text1}");
    assert!(text0.contains("data-parallel: 2 peers"), "{text0}");
    assert!(text1.contains("node 0 writes the results"), "{text1}");
    // node 1 writes no checkpoint
    assert!(Checkpoints::new(&other, 1).latest().unwrap().is_none());
    let a = parameters(&alone);
    for (what, b) in [
        ("two processes", parameters(&two)),
        ("two threads", parameters(&threads)),
    ] {
        assert_eq!(a.len(), b.len());
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(d < 1e-5, "{what}: parameters differ by {d}");
    }
    for d in [alone, two, other, threads] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_killed_peer_stops_the_other_within_its_timeout_and_the_checkpoint_resumes() {
    let (out, other) = (dir("killed"), dir("killed-node1"));
    let port = free_port();
    let long = [
        "--epochs",
        "100000",
        "--checkpoint-every",
        "1",
        "--peer-timeout",
        "5",
    ];
    let mut n1 = node(1, port, &other, &long);
    let n0 = node(0, port, &out, &long);
    // wait for node 0's second checkpoint, then kill node 1
    let start = Instant::now();
    loop {
        let saved = Checkpoints::new(&out, 1).latest().ok().flatten();
        if saved.is_some_and(|s| s.epoch >= 2) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    n1.kill().unwrap();
    let _ = n1.wait();
    let killed = Instant::now();
    let (ok, text) = finish(n0);
    let waited = killed.elapsed();
    assert!(!ok, "node 0 went on without its peer: {text}");
    // the peer's death is seen at once (a connection reset) or at the timeout
    assert!(
        text.contains("data-parallel training")
            && text.contains("a peer has stopped, died or cannot be reached"),
        "{text}"
    );
    assert!(
        waited < Duration::from_secs(120),
        "node 0 stopped after {waited:?}"
    );
    // the last checkpoint is intact: a run of one resumes it
    let saved = Checkpoints::new(&out, 1).latest().unwrap().unwrap();
    let to = (saved.epoch + 1).to_string();
    let (ok, stdout, stderr) = rensa_launch::run_program(
        BIN,
        &[
            "--epochs",
            &to,
            "--resume",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        Checkpoints::new(&out, 1).latest().unwrap().unwrap().epoch,
        saved.epoch + 1
    );
    for d in [out, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_peer_with_another_model_is_refused_before_training() {
    let (out, other) = (dir("refused"), dir("refused-node1"));
    let port = free_port();
    let n1 = node(1, port, &other, &["--epochs", "2", "--hidden", "12"]);
    let n0 = node(0, port, &out, &["--epochs", "2"]);
    let (r0, r1) = (finish(n0), finish(n1));
    let both = format!("node 0:\n{}\nnode 1:\n{}", r0.1, r1.1);
    for (ok, text) in [r0, r1] {
        assert!(!ok, "{both}");
        assert!(
            text.contains("setting `hidden`") && text.contains("parameter shapes"),
            "{both}"
        );
    }
    // refused before any step: nothing saved
    assert!(Checkpoints::new(&out, 1).latest().unwrap().is_none());
    for d in [out, other] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn bad_peer_options_are_refused_before_any_work() {
    for (args, expected) in [
        (&["--nodes", "2"][..], "needs --orchestrator"),
        (&["--node-id", "1"][..], "--node-id 1 needs --nodes"),
        (
            &[
                "--nodes",
                "2",
                "--node-id",
                "2",
                "--orchestrator",
                "ws://127.0.0.1:1",
                "--node-address",
                "ws://127.0.0.1:2",
            ][..],
            "node id",
        ),
        (
            &[
                "--nodes",
                "2",
                "--node-id",
                "1",
                "--orchestrator",
                "127.0.0.1:1",
                "--node-address",
                "ws://127.0.0.1:2",
            ][..],
            "orchestrator address",
        ),
        (&["--peers", "0"][..], "--peers"),
        (&["--local-strategy", "star"][..], "star"),
        (
            &["--orchestrator", "ws://127.0.0.1:1"][..],
            "runs of several processes",
        ),
    ] {
        let out = dir("bad-options");
        let args = [args, &["--epochs", "1", "--out", out.to_str().unwrap()]].concat();
        let (ok, stdout, stderr) = rensa_launch::run_program(BIN, &args);
        assert!(!ok, "{args:?}: {stdout}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn a_node_whose_port_is_taken_says_so_before_registering() {
    // (retried: a child that another test is spawning holds every open socket of this process,
    // free_port's probe included, for the instant before it executes its program)
    let (port, _taken) = loop {
        let port = free_port();
        if let Ok(taken) = std::net::TcpListener::bind(("0.0.0.0", port)) {
            break (port, taken);
        }
    };
    let out = dir("port-taken");
    let orchestrator = format!("ws://127.0.0.1:{}", free_port());
    let address = format!("ws://127.0.0.1:{port}");
    let args = [
        "--nodes",
        "2",
        "--node-id",
        "1",
        "--orchestrator",
        &orchestrator,
        "--node-address",
        &address,
        "--epochs",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, stdout, stderr) = rensa_launch::run_program(BIN, &args);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains(&format!("cannot serve this node's tensors on port {port}")),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
