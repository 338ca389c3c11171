//! An export over HTTP whose stream breaks is resumed: `ledgerctl export
//! --url` asks again, in the same checkpoint, from the first leaf it lacks
//! (`GET /v1/export?…&size=&resume=`), and writes the package an unbroken
//! export writes. A proxy on 127.0.0.1 cuts the first export stream after
//! a given number of bytes of its answer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ledger_tests::{http, ok, records, run, Server};

/// A TCP proxy to `to` that cuts the connection of the first export
/// request after `cut_after` bytes of its answer (and, `then_refuse`,
/// closes every connection after that); it keeps the request lines it
/// forwarded.
struct CuttingProxy {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CuttingProxy {
    fn start(to: &str, cut_after: usize, then_refuse: bool) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (to, seen) = (to.to_string(), requests.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if then_refuse && cut_done.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let armed = Arc::new(AtomicBool::new(false));
                // Client to server: note the request lines; arm the cut on
                // the first export request.
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (seen, cut_done, arm) = (seen.clone(), cut_done.clone(), armed.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n) = from_client.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        for line in text.lines().filter(|l| l.starts_with("GET ")) {
                            seen.lock().unwrap().push(line.to_string());
                            if line.contains("/v1/export") && !cut_done.swap(true, Ordering::SeqCst)
                            {
                                arm.store(true, Ordering::SeqCst);
                            }
                        }
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                // Server to client, cut where armed.
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let mut buf = vec![0; 16 * 1024];
                    let mut sent = 0;
                    while let Ok(n) = from_server.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let n = match armed.load(Ordering::SeqCst) {
                            true => n.min(cut_after - sent),
                            false => n,
                        };
                        if to_client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                        if armed.load(Ordering::SeqCst) && sent >= cut_after {
                            break;
                        }
                    }
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = from_server.shutdown(Shutdown::Both);
                });
            }
        });
        CuttingProxy { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// `ledgerctl export --url http://{addr}` of everything in `s` with
/// `filter`, into `out`: its stderr.
fn export_via(s: &Server, addr: &str, filter: &[&str], out: &Path) -> String {
    let r = export_run(s, addr, filter, out);
    assert_eq!(r.code, 0, "export failed:\n{}{}", r.stdout, r.stderr);
    r.stderr
}

/// [`export_via`], as it ended.
fn export_run(s: &Server, addr: &str, filter: &[&str], out: &Path) -> ledger_tests::Run {
    let key_file = s.data.join("log.pub");
    let url = format!("http://{addr}");
    let mut args = vec![
        "--url",
        &url,
        "--token",
        &s.reader,
        "--key",
        key_file.to_str().unwrap(),
        "export",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2030-01-01T00:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(filter);
    run("ledgerctl", &args)
}

#[test]
fn a_broken_export_stream_is_resumed_in_the_same_checkpoint() {
    let s = Server::start(&[]);
    for batch in 0..5 {
        s.append(&records(&format!("b{batch}"), 1000));
    }
    s.covered(5000);
    let dir = tempfile::tempdir().unwrap();
    let key_file = s.data.join("log.pub");
    let key_file = key_file.to_str().unwrap();

    // Unbroken, for comparison; then cut short after 300 kB of its ~3 MB.
    let whole = dir.path().join("whole");
    export_via(&s, &s.addr, &[], &whole);
    let proxy = CuttingProxy::start(&s.addr, 300_000, false);
    let resumed = dir.path().join("resumed");
    let said = export_via(&s, &proxy.addr, &[], &resumed);
    assert!(said.contains("resumed from there"), "{said}");
    let exports: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.contains("/v1/export"))
        .collect();
    assert_eq!(exports.len(), 2, "{exports:?}");
    assert!(
        exports[1].contains("&size=5000&resume=") && !exports[0].contains("resume="),
        "{exports:?}"
    );
    let verdict = ok(
        "ledger-verify",
        &["export", resumed.to_str().unwrap(), "--key", key_file],
    );
    assert!(verdict.contains("complete"), "{verdict}");
    for file in [
        "leaves.cbor",
        "decisions.jsonl",
        "decisions.csv",
        "checkpoint",
    ] {
        assert_eq!(
            std::fs::read(whole.join(file)).unwrap(),
            std::fs::read(resumed.join(file)).unwrap(),
            "{file}"
        );
    }

    // Filtered: most items are withheld leaves' hashes; cut inside them.
    let proxy = CuttingProxy::start(&s.addr, 40_000, false);
    let filtered = dir.path().join("filtered");
    let said = export_via(&s, &proxy.addr, &["--subject", "u3"], &filtered);
    assert!(said.contains("resumed from there"), "{said}");
    let verdict = ok(
        "ledger-verify",
        &["export", filtered.to_str().unwrap(), "--key", key_file],
    );
    assert!(verdict.contains("complete"), "{verdict}");
    let disclosed = std::fs::read_to_string(filtered.join("decisions.jsonl")).unwrap();
    // i % 9 == 3: 111 of each 1,000.
    assert_eq!(disclosed.lines().count(), 5 * 111);

    // A server that stays unreachable after the break: given up after
    // --resume-for, naming the leaf, and no package is left as whole.
    let proxy = CuttingProxy::start(&s.addr, 300_000, true);
    let lost = dir.path().join("lost");
    let started = std::time::Instant::now();
    let r = export_run(&s, &proxy.addr, &["--resume-for", "2s"], &lost);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("was not resumed within 2 s"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!lost.join("manifest.json").exists());

    // What the server refuses of a resume.
    let reader = format!("Bearer {}", s.reader);
    let auth = [("Authorization", reader.as_str())];
    let window = "from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z";
    for (query, reason) in [
        ("resume=10", "resume needs size"),
        ("size=5000&resume=5001", "outside the range [0, 5000)"),
        ("size=5000&resume=x", "resume must be a decimal"),
    ] {
        let r = http(
            &s.addr,
            "GET",
            &format!("/v1/export?{window}&{query}"),
            &auth,
            b"",
        );
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(r.text().contains(reason), "{query}: {}", r.text());
    }
}

/// A stop gives requests in flight `request_timeout_ms` to finish, then
/// closes their connections: an export streamed to a reader that stopped
/// reading (larger than the sockets' buffers) no longer holds ledgerd
/// forever. The reader resumes it from another ledgerd start (above).
#[test]
fn a_stop_closes_an_export_stream_its_reader_stalls() {
    let mut s = Server::with_config("request_timeout_ms = 1000\n", &[]);
    for batch in 0..30 {
        s.append(&records(&format!("b{batch}"), 1000));
    }
    s.covered(30_000);
    let mut reader = TcpStream::connect(&s.addr).unwrap();
    write!(
        reader,
        "GET /v1/export?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s.reader
    )
    .unwrap();
    let mut head = [0u8; 4096];
    let n = reader.read(&mut head).unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    // The reader reads no more; ledgerd is asked to stop.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let exited = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = s.child.kill();
            panic!("ledgerd still serving a stalled export 60 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(exited.code(), Some(0));
    // What the stream had sent stays readable, then it ends.
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    reader.shutdown(Shutdown::Both).ok();
}
