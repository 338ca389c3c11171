//! Helpers for the end-to-end tests: locate and run the workspace binaries;
//! and a small file system that fills up ([`Tmpfs`], also for the ledger's
//! own tests).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a workspace binary (`ledgerctl`, `ledgerd`, `ledger-verify`) in the
/// same target directory as the running test. `cargo test --workspace` builds
/// them before running tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (or `make test`)",
        path.display()
    );
    path
}

/// The result of running a binary.
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `name args…` and collects its output.
pub fn run(name: &str, args: &[&str]) -> Run {
    Command::new(bin(name))
        .args(args)
        .output()
        .expect("spawn")
        .into()
}

/// Runs `name args…`, asserting exit 0; returns stdout.
pub fn ok(name: &str, args: &[&str]) -> String {
    let r = run(name, args);
    assert_eq!(
        r.code, 0,
        "{name} {args:?} failed:\n{}{}",
        r.stdout, r.stderr
    );
    r.stdout
}

/// Runs `name args…`, asserting that it fails (exit code ≠ 0) with a
/// message naming `needle` on stderr.
pub fn refused(name: &str, args: &[&str], needle: &str) {
    let r = run(name, args);
    assert!(
        r.code != 0 && r.stderr.contains(needle),
        "{name} {args:?} should fail naming {needle:?}: exit {}\n{}",
        r.code,
        r.stderr
    );
}

/// A `ledgerd` that answers, and may still be opening its store
/// ([`Server::spawn_on`]).
pub struct Starting {
    /// The child process (killed if dropped before [`Starting::served`]).
    child: Option<std::process::Child>,
    /// `127.0.0.1:port`.
    pub addr: String,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    data: PathBuf,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Starting {
    /// Waits until the store is open and ledgerd has printed what it
    /// prints for a new user.
    pub fn served(mut self) -> Server {
        let (mut writer, mut reader, mut key) = (String::new(), String::new(), String::new());
        for line in self.lines.by_ref() {
            let line = line.expect("read ledgerd output");
            if let Some(k) = line.strip_prefix("verifier key (give this to auditors): ") {
                key = k.to_string();
            }
            let last = line.split_whitespace().last().unwrap_or("").to_string();
            if line.contains("relay (local-enforcer") {
                writer = last;
            } else if line.contains("reader (local-reader)") {
                reader = last;
            }
            if line.starts_with("send a record:") {
                break;
            }
        }
        Server {
            child: self.child.take().expect("a running ledgerd"),
            addr: self.addr.clone(),
            writer,
            reader,
            key,
            data: self.data.clone(),
            _dir: None,
        }
    }

    /// Stops it with SIGTERM and waits (10 s at most); returns the exit
    /// code and what it printed after its first line.
    pub fn stop(mut self) -> (Option<i32>, String) {
        let code = self.terminate();
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        (code, rest.join("\n"))
    }

    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("ledgerd did not stop within 10 s of SIGTERM");
    }
}

/// A `ledgerd` started on 127.0.0.1 with a temp data dir; stopped (SIGTERM)
/// when dropped.
pub struct Server {
    /// The child process.
    pub child: std::process::Child,
    /// `127.0.0.1:port`.
    pub addr: String,
    /// The relay token made on first start (`local-enforcer`; it may write
    /// records of any `enforcer.id`).
    pub writer: String,
    /// The reader token made on first start.
    pub reader: String,
    /// The verifier key line.
    pub key: String,
    /// The data dir.
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `ledgerd` on a free port in a new temp dir.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut s = Server::start_in(&data, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts `ledgerd` in a new temp dir with `toml` as its config file
    /// (`--config`), and `extra` flags.
    pub fn with_config(toml: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("ledgerd.toml");
        std::fs::write(&config, toml).expect("write the config");
        let mut args = vec!["--config", config.to_str().expect("a UTF-8 path")];
        args.extend_from_slice(extra);
        let mut s = Server::start_in(&dir.path().join("data"), &args);
        s._dir = Some(dir);
        s
    }

    /// Adds a token with `ledgerctl token add <args>` on the server's data
    /// dir (the server reads it without restarting); returns the token.
    pub fn add_token(&self, args: &[&str]) -> String {
        let data = self.data.to_str().expect("a UTF-8 path");
        let mut all = vec!["--data", data, "token", "add"];
        all.extend_from_slice(args);
        ok("ledgerctl", &all).trim().to_string()
    }

    /// Waits until the latest signed checkpoint covers `size` leaves
    /// (15 s at most).
    pub fn covered(&self, size: u64) {
        let key = verifier::VerifierKey::parse(&self.key).expect("the verifier key");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let r = self.request("GET", "/checkpoint", &[], b"");
            let cp = verifier::checkpoint::open(&r.body, &key).expect("a signed checkpoint");
            if cp.size >= size {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint of size {size}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The log's size, as `/metrics` gives it.
    pub fn tree_size(&self) -> u64 {
        self.metric("ledger_tree_size") as u64
    }

    /// One unlabelled value of `/metrics`, by name.
    pub fn metric(&self, name: &str) -> f64 {
        let m = self.request("GET", "/metrics", &[], b"").text();
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /metrics"))
    }

    /// Starts `ledgerd` on `data` (reusing tokens made earlier, if any).
    pub fn start_in(data: &Path, extra: &[&str]) -> Server {
        Server::start_on(data, "127.0.0.1:0", extra)
    }

    /// [`Server::start_in`] listening on `listen` (to start again on the
    /// address a stopped server had).
    pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::spawn_on(data, listen, extra).served()
    }

    /// Starts `ledgerd` on `data` listening on `listen`, and returns as
    /// soon as it answers, while it may still be opening the store.
    pub fn spawn_on(data: &Path, listen: &str, extra: &[&str]) -> Starting {
        use std::io::BufRead;
        let mut child = Command::new(bin("ledgerd"))
            .args(["--data", data.to_str().unwrap(), "--listen", listen])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ledgerd");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.expect("read ledgerd output");
            if let Some(rest) = line.split("answering on ").nth(1) {
                let rest = rest.split_whitespace().next().unwrap_or("");
                let rest = rest.strip_prefix("https://").unwrap_or(rest);
                addr = Some(rest.strip_prefix("http://").unwrap_or(rest).to_string());
                break;
            }
        }
        Starting {
            child: Some(child),
            addr: addr.expect("ledgerd printed its address"),
            lines,
            data: data.to_path_buf(),
        }
    }

    /// Sends one HTTP/1.1 request; returns status, headers (lower-case names) and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(&self.addr, method, path, headers, body)
    }

    /// Posts `body` (JSON) to `/v1/decisions` with `token`.
    pub fn post(&self, token: &str, body: &serde_json::Value) -> Response {
        let auth = format!("Bearer {token}");
        self.request(
            "POST",
            "/v1/decisions",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// Posts `body` (JSON) to `/v1/decisions` with the writer token and
    /// asserts that it was answered 200.
    pub fn append(&self, body: &serde_json::Value) {
        let r = self.post(&self.writer, body);
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// Runs `ledgerctl --url <this server> --token <reader> --key <key>
    /// <args>…`, asserting exit 0; returns stdout.
    pub fn ctl(&self, key: &str, args: &[&str]) -> String {
        let url = format!("http://{}", self.addr);
        let mut all = vec!["--url", &url, "--token", &self.reader, "--key", key];
        all.extend_from_slice(args);
        ok("ledgerctl", &all)
    }

    /// [`Server::ctl`] without asserting how it ended.
    pub fn ctl_run(&self, key: &str, args: &[&str]) -> Run {
        let url = format!("http://{}", self.addr);
        let mut all = vec!["--url", &url, "--token", &self.reader, "--key", key];
        all.extend_from_slice(args);
        run("ledgerctl", &all)
    }

    /// Kills the process at once (SIGKILL), as a crash or power cut would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops with SIGTERM and waits; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.terminate()
    }

    fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// `n` allow decisions `<prefix>-<i>` by the `gw` enforcer, as a JSON
/// array, each with its own request id.
pub fn records(prefix: &str, n: usize) -> serde_json::Value {
    serde_json::Value::Array(
        (0..n)
            .map(|i| {
                serde_json::json!({
                    "decision_id": format!("{prefix}-{i}"), "time": "2026-11-23T07:00:00Z",
                    "enforcer": {"id": "gw", "kind": "gateway"},
                    "subject": {"type": "user", "id": format!("u{}", i % 9), "identity_kind": "human", "owner": "o"},
                    "action": {"name": "read"}, "resource": {"type": "api", "id": "r"},
                    "context": {"request_id": format!("{prefix}-req-{i}")},
                    "policy": {"engine": "opa", "id": "p", "version": "1"}, "decision": "allow"
                })
            })
            .collect(),
    )
}

/// The arguments of `ledgerctl --url URL --key KEY --data DIR mirror
/// --once`: one sync of the mirror in `dir`.
pub fn mirror_once_args<'a>(url: &'a str, key: &'a str, dir: &'a Path) -> Vec<&'a str> {
    let dir = dir.to_str().expect("a UTF-8 path");
    vec![
        "--url", url, "--key", key, "--data", dir, "mirror", "--once",
    ]
}

/// Restores a store in `restored` from the mirror `mirror` (`ledgerctl
/// restore`) and audits it; returns what the audit printed.
pub fn restore_and_audit(mirror: &Path, restored: &Path) -> String {
    let restored = restored.to_str().expect("a UTF-8 path");
    ok(
        "ledgerctl",
        &[
            "--data",
            restored,
            "restore",
            "--mirror",
            mirror.to_str().expect("a UTF-8 path"),
        ],
    );
    ok("ledgerctl", &["--data", restored, "audit"])
}

/// The time now, canonical (RFC 3339, UTC).
pub fn now() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    verifier::timestamp::Timestamp::from_unix_nanos(ns as u64)
        .unwrap()
        .canonical()
}

/// [`records`] decided [`now`]: what a store pruned by retention takes (it
/// refuses decisions made before its first kept one was received).
pub fn records_now(prefix: &str, n: usize) -> serde_json::Value {
    let now = now();
    let mut all = records(prefix, n);
    for r in all.as_array_mut().unwrap() {
        r["time"] = serde_json::json!(now);
    }
    all
}

/// Asserts that every sample's metric in the Prometheus text `m` has its
/// HELP and TYPE lines.
pub fn assert_metrics_described(m: &str) {
    for line in m.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|b| m.contains(&format!("# TYPE {b} ")))
            })
            .unwrap_or(name);
        for kind in ["HELP", "TYPE"] {
            assert!(
                m.contains(&format!("# {kind} {base} ")),
                "{name}: no {kind}"
            );
        }
    }
}

/// A running `ledgerctl witness serve`; killed when dropped.
pub struct Witness {
    child: std::process::Child,
    /// `http(s)://127.0.0.1:port`.
    pub url: String,
}

impl Witness {
    /// Starts one on a free port with its keys and state in `dir`,
    /// following the log of `log_key`, with `extra` flags (TLS).
    pub fn start(dir: &Path, log_key: &str, extra: &[&str]) -> Witness {
        Witness::start_on(dir, log_key, "127.0.0.1:0", extra)
    }

    /// [`Witness::start`] listening on `listen` (to start again on the
    /// address a stopped witness had).
    pub fn start_on(dir: &Path, log_key: &str, listen: &str, extra: &[&str]) -> Witness {
        use std::io::BufRead;
        let mut child = Command::new(bin("ledgerctl"))
            .args(["witness", "serve", "--listen", listen, "--log", log_key])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the witness");
        let out = child.stdout.take().unwrap();
        let line = std::io::BufReader::new(out)
            .lines()
            .next()
            .expect("the witness prints its address")
            .unwrap();
        let url = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .expect("listening on <url>")
            .to_string();
        Witness { child, url }
    }
}

impl Witness {
    /// Kills the witness at once (SIGKILL).
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A labelled sample of `/metrics` for the witness `name`.
pub fn witness_metric(s: &Server, metric: &str, name: &str) -> u64 {
    let text = s.request("GET", "/metrics", &[], b"").text();
    let prefix = format!("{metric}{{witness=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{prefix} in /metrics:\n{text}"))
}

/// Polls `done` every 50 ms until it holds; fails naming `what` after 20 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until `name` has cosigned a checkpoint of at least `size`.
pub fn cosigned(s: &Server, name: &str, size: u64) {
    wait_until(&format!("{name} cosigns size {size}"), || {
        witness_metric(s, "ledger_witness_cosigned_size", name) >= size
    });
}

/// Waits until a request to the witness `name` has failed.
pub fn witness_failed(s: &Server, name: &str) {
    wait_until(&format!("a failure of {name} counted"), || {
        witness_metric(s, "ledger_witness_failures_total", name) > 0
    });
}

/// An HTTP response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (Connection: close), for loopback tests only.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_http(addr, method, path, headers, body)
        .unwrap_or_else(|| panic!("no response to {method} {path}"))
}

/// [`http`], `None` when the server is gone or answers nothing.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    // The server may answer (413) before reading a large body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

/// The seed of a crash test's random kill moments: `LEDGER_CRASH_SEED` if
/// set (to repeat a run), else the clock; printed, with `what`, so that a
/// failing run can be repeated.
pub fn crash_seed(what: &str) -> u64 {
    let seed = std::env::var("LEDGER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("a clock after 1970")
                .as_nanos() as u64
                | 1
        });
    eprintln!("{what}: LEDGER_CRASH_SEED={seed}");
    seed
}

/// The number in the environment variable `name` (a crash test's cycles,
/// for a longer run), else `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `ledgerctl witness keygen --name NAME --out DIR`: the witness's public
/// key it prints.
pub fn witness_keygen(name: &str, dir: &Path) -> String {
    ok(
        "ledgerctl",
        &[
            "witness",
            "keygen",
            "--name",
            name,
            "--out",
            dir.to_str().expect("a UTF-8 path"),
        ],
    )
    .trim()
    .to_string()
}

/// The next number of a xorshift64 sequence from `x` (never 0 from a
/// seed that is not).
pub fn next_random(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A small file system mounted for a test (tmpfs: needs root), unmounted
/// when dropped: a disk that fills up.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `mb` MiB at `dir`; `None` (said on stderr) where
    /// mounts are refused: not root, or a sandbox that refuses them even
    /// to root.
    pub fn mount(dir: &Path, mb: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(out) => {
                eprintln!(
                    "skipped: cannot mount a small file system here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }

    /// MiB free.
    pub fn available_mb(&self) -> u64 {
        let df = Command::new("df")
            .args(["--output=avail", "-m"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&df.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }

    /// Fills the file system up to `left` MiB free (a file `filler`, grown
    /// if it is there).
    pub fn fill(&self, left: u64) {
        let filled = Command::new("dd")
            .args(["if=/dev/zero", "bs=1M", "oflag=append", "conv=notrunc"])
            .arg(format!(
                "count={}",
                self.available_mb().saturating_sub(left)
            ))
            .arg(format!("of={}", self.0.join("filler").display()))
            .output()
            .unwrap();
        assert!(filled.status.success() || self.available_mb() <= left);
    }

    /// Removes what [`Tmpfs::fill`] wrote.
    pub fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
