//! Hostile requests on the real ledgerd, table by table: each gets the
//! right 4xx (with a reason where HTTP lets one be sent), nothing is
//! appended, and the server stays healthy and takes a good record after.
//! Then the connection limits: a client that sends its headers too slowly
//! is cut off, and connections over the cap are answered 503 at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ledger_tests::Server;
use serde_json::{json, Value};

fn record(id: &str) -> Value {
    json!({
        "decision_id": id, "time": "2026-11-23T07:00:00Z",
        "enforcer": {"id": "gw-1", "kind": "gateway"},
        "subject": {"type": "user", "id": "alice", "identity_kind": "human", "owner": "alice"},
        "action": {"name": "read"}, "resource": {"type": "api", "id": "orders"},
        "policy": {"engine": "opa", "id": "p", "version": "1"}, "decision": "allow"
    })
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).unwrap();
    b
}

/// Sends raw bytes on a new connection and reads the answer's status line
/// (`None`: the server closed the connection without answering).
fn raw(addr: &str, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let line = String::from_utf8_lossy(&got);
    line.split(' ').nth(1).and_then(|c| c.parse().ok())
}

/// One hostile request and the status it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// What the reason must name, if anything in particular.
    naming: Option<&'static str>,
}

fn case(name: &'static str, method: &'static str, path: &str, status: u16) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        status,
        naming: None,
    }
}

impl Case {
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Case {
        self.headers.push((k, v.into()));
        self
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Case {
        self.body = b.into();
        self
    }
    fn naming(mut self, needle: &'static str) -> Case {
        self.naming = Some(needle);
        self
    }
    /// A write with the given content type and token.
    fn write(
        name: &'static str,
        token: &str,
        ct: &str,
        body: impl Into<Vec<u8>>,
        status: u16,
    ) -> Case {
        case(name, "POST", "/v1/decisions", status)
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", ct)
            .body(body)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn hostile_requests_get_4xx_and_append_nothing() {
    let s = Server::with_config("max_body_bytes = 1000000\n", &[]);
    let w = s.writer.clone();
    let reader = format!("Bearer {}", s.reader);
    let expired = s.add_token(&["--enforcer", "gw-1", "--role", "writer", "--expires", "1s"]);

    let good = cbor(&record("h-1"));
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 5);
    let mut dup_cbor = vec![0xa2, 0x6b];
    dup_cbor.extend_from_slice(b"decision_id");
    dup_cbor.extend_from_slice(&[0x61, b'a', 0x6b]);
    dup_cbor.extend_from_slice(b"decision_id");
    dup_cbor.extend_from_slice(&[0x61, b'b']);
    let json_dup = r#"{"decision_id":"h-d","decision_id":"h-e","time":"2026-11-23T07:00:00Z",
        "enforcer":{"id":"gw-1","kind":"gateway"},
        "subject":{"type":"user","id":"alice","identity_kind":"human","owner":"alice"},
        "action":{"name":"read"},"resource":{"type":"api","id":"orders"},
        "policy":{"engine":"opa","id":"p","version":"1"},"decision":"allow"}"#;
    let mut nan = record("h-nan");
    nan["action"]["properties"] = json!({"x": 0.5});
    let mut nan_cbor = cbor(&nan);
    // 0.5 is written as a half float f9 3800; make it NaN (f9 7e00).
    let at = nan_cbor
        .windows(3)
        .position(|w| w == [0xf9, 0x38, 0x00])
        .unwrap();
    nan_cbor[at + 1..at + 3].copy_from_slice(&[0x7e, 0x00]);
    let mut bad_utf8 = serde_json::to_vec(&record("h-u")).unwrap();
    let at = bad_utf8.windows(5).position(|w| w == b"alice").unwrap();
    bad_utf8[at] = 0xff;
    let mut bad_utf8_cbor = cbor(&record("h-v"));
    let at = bad_utf8_cbor
        .windows(5)
        .position(|w| w == b"alice")
        .unwrap();
    bad_utf8_cbor[at + 1] = 0xfe;
    let bomb = gzip(&vec![b' '; 80 << 20]);
    let mut deep = record("h-deep");
    deep["extensions"] = json!({"x": (0..40).fold(json!(1), |v, _| json!([v]))});
    let deep_extensions = serde_json::to_vec(&deep).unwrap();

    let cases = vec![
        // Bodies.
        Case::write(
            "truncated JSON",
            &w,
            "application/json",
            &b"{\"decision_id\": \"x\", "[..],
            400,
        ),
        Case::write("truncated CBOR", &w, "application/cbor", truncated, 400),
        Case::write("empty JSON body", &w, "application/json", Vec::new(), 400),
        Case::write("empty JSON array", &w, "application/json", &b"[]"[..], 400),
        Case::write(
            "deep JSON nesting",
            &w,
            "application/json",
            "[".repeat(100_000),
            400,
        ),
        Case::write(
            "deep CBOR nesting",
            &w,
            "application/cbor",
            vec![0x81; 100_000],
            400,
        ),
        Case::write(
            "extensions nested 40 deep",
            &w,
            "application/json",
            deep_extensions,
            400,
        ),
        Case::write(
            "CBOR array of 2^64-1 items",
            &w,
            "application/cbor",
            vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            400,
        ),
        Case::write(
            "CBOR byte string of 1 TiB",
            &w,
            "application/cbor",
            vec![0x5b, 0, 0, 1, 0, 0, 0, 0, 0, 1],
            400,
        ),
        Case::write(
            "CBOR map of 2^32 entries",
            &w,
            "application/cbor",
            vec![0xba, 0xff, 0xff, 0xff, 0xff, 0x61],
            400,
        ),
        Case::write(
            "CBOR sequence of a huge item",
            &w,
            "application/cbor-seq",
            vec![0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            400,
        ),
        Case::write(
            "invalid UTF-8 in JSON",
            &w,
            "application/json",
            bad_utf8,
            400,
        ),
        Case::write(
            "invalid UTF-8 in CBOR text",
            &w,
            "application/cbor",
            bad_utf8_cbor,
            400,
        ),
        Case::write(
            "duplicate CBOR map key",
            &w,
            "application/cbor",
            dup_cbor,
            400,
        ),
        Case::write(
            "duplicate JSON object key",
            &w,
            "application/json",
            json_dup,
            400,
        ),
        Case::write(
            "NaN in JSON",
            &w,
            "application/json",
            &br#"{"decision_id": NaN}"#[..],
            400,
        ),
        Case::write(
            "a float out of range in JSON",
            &w,
            "application/json",
            &br#"[{"decision_id": 1e999}]"#[..],
            400,
        ),
        Case::write("NaN in CBOR", &w, "application/cbor", nan_cbor, 400),
        Case::write(
            "a record that is not a map",
            &w,
            "application/json",
            &b"\"hello\""[..],
            400,
        ),
        Case::write("CBOR undefined", &w, "application/cbor", vec![0xf7], 400),
        Case::write(
            "trailing bytes after CBOR",
            &w,
            "application/cbor",
            [good.clone(), vec![0x00]].concat(),
            400,
        ),
        Case::write("text/plain", &w, "text/plain", good.clone(), 415),
        Case::write("no content type", &w, "", good.clone(), 415),
        Case::write(
            "gzip content encoding on records",
            &w,
            "application/cbor",
            gzip(&good),
            415,
        )
        .header("Content-Encoding", "gzip"),
        case("gzip bomb to the OPA endpoint", "POST", "/v1/opa/logs", 413)
            .header("Authorization", format!("Bearer {w}"))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(bomb),
        case("not gzip but declared so", "POST", "/v1/opa/logs", 400)
            .header("Authorization", format!("Bearer {w}"))
            .header("Content-Encoding", "gzip")
            .body(&b"\x1f\x8bnot really"[..]),
        Case::write(
            "a body over the limit",
            &w,
            "application/cbor",
            vec![0x80; 1_000_001],
            413,
        ),
        // Tokens.
        Case::write("no token", "", "application/cbor", good.clone(), 401),
        Case::write(
            "a wrong token",
            "lt_wrong",
            "application/cbor",
            good.clone(),
            401,
        ),
        Case::write(
            "an expired token",
            &expired,
            "application/cbor",
            good.clone(),
            401,
        ),
        Case::write(
            "a reader token writing",
            &s.reader,
            "application/cbor",
            good.clone(),
            403,
        ),
        case("Basic credentials", "POST", "/v1/decisions", 401)
            .header("Authorization", "Basic YWRtaW46YWRtaW4=")
            .header("Content-Type", "application/cbor")
            .body(good.clone()),
        case("a writer token reading", "GET", "/v1/decisions/h-1", 403)
            .header("Authorization", format!("Bearer {w}")),
        // Paths and numbers. A path that names no tile is 404 (no such
        // resource), with the reason.
        case("tile path traversal", "GET", "/tile/../../etc/passwd", 404),
        case(
            "encoded tile path traversal",
            "GET",
            "/tile/0/..%2F..%2Fetc%2Fpasswd",
            404,
        ),
        case("tile level out of range", "GET", "/tile/99/000", 404),
        case("no such endpoint", "GET", "/v1/nothing", 404),
        case("an endpoint asked with GET", "GET", "/v1/decisions", 405),
        case(
            "a read endpoint asked with DELETE",
            "DELETE",
            "/checkpoint",
            405,
        ),
        case("tile index not a number", "GET", "/tile/0/abc", 404),
        case("tile width zero", "GET", "/tile/0/000.p/0", 404),
        case("tile beyond the log", "GET", "/tile/0/x123/456", 404),
        case(
            "checkpoint size not a number",
            "GET",
            "/v1/checkpoints/abc",
            400,
        ),
        case(
            "checkpoint size over u64",
            "GET",
            "/v1/checkpoints/99999999999999999999999",
            400,
        ),
        case(
            "consistency backwards",
            "GET",
            "/v1/proof/consistency?from=3&to=1",
            400,
        ),
        case(
            "consistency negative",
            "GET",
            "/v1/proof/consistency?from=-1&to=1",
            400,
        ),
        case(
            "search with a bad cursor",
            "GET",
            "/v1/search?subject=alice&cursor=zzz",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "search with a negative limit",
            "GET",
            "/v1/search?subject=alice&limit=-1",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "search with a huge limit",
            "GET",
            "/v1/search?subject=alice&limit=1e99",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "search pinned to a bad size",
            "GET",
            "/v1/search?subject=alice&at=abc",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "search with a bad time",
            "GET",
            "/v1/search?from=yesterday",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "proof at a negative size",
            "GET",
            "/v1/decisions/h-1/proof?size=-1",
            400,
        )
        .header("Authorization", reader.clone()),
        case(
            "search with a filter twice",
            "GET",
            "/v1/search?subject=alice&subject=bob",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("subject is given twice"),
        case(
            "search with a limit twice",
            "GET",
            "/v1/search?subject=alice&limit=1&limit=2",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("limit is given twice"),
        case(
            "search with an empty filter (an unset shell variable)",
            "GET",
            "/v1/search?subject=",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("subject is empty"),
        case(
            "search with the record-time window backwards",
            "GET",
            "/v1/search?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("from must be before to"),
        case(
            "search with an empty receipt window",
            "GET",
            "/v1/search?received_from=2026-12-01T00:00:00Z&received_to=2026-12-01T00:00:00Z",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("received_from must be before received_to"),
        case(
            "proof with a misspelt size",
            "GET",
            "/v1/decisions/h-1/proof?sise=1",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("sise\\\"; known: size"),
        case(
            "evidence with an unknown parameter",
            "GET",
            "/v1/decisions/h-1/evidence?at=1",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("unknown parameter"),
        case(
            "consistency with from twice",
            "GET",
            "/v1/proof/consistency?from=1&from=0&to=1",
            400,
        )
        .naming("from is given twice"),
        case(
            "export with an empty filter",
            "GET",
            "/v1/export?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&subject=",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("subject is empty"),
        case(
            "export with a filter twice",
            "GET",
            "/v1/export?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z&subject=a&subject=b",
            400,
        )
        .header("Authorization", reader.clone())
        .naming("subject is given twice"),
        case(
            "export with the window backwards",
            "GET",
            "/v1/export?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            400,
        )
        .header("Authorization", reader.clone()),
    ];
    // Let the short-lived token expire.
    std::thread::sleep(Duration::from_millis(1100));
    let mut wrong = Vec::new();
    for c in &cases {
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .filter(|(_, v)| !v.is_empty() && v != "Bearer ")
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let r = s.request(c.method, &c.path, &headers, &c.body);
        if r.status != c.status {
            wrong.push(format!(
                "{}: {} (wanted {}) {}",
                c.name,
                r.status,
                c.status,
                r.text()
            ));
        } else if r.status != 413 && r.text().trim().is_empty() {
            wrong.push(format!("{}: {} without a reason", c.name, r.status));
        } else if let Some(needle) = c.naming.filter(|n| !r.text().contains(n)) {
            wrong.push(format!(
                "{}: the reason does not name {needle:?}: {}",
                c.name,
                r.text()
            ));
        }
    }

    // Requests malformed below HTTP's body: floods and giant heads.
    let addr = s.addr.clone();
    let mut flood = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        flood.push_str(&format!("X-Flood-{i}: {}\r\n", "y".repeat(20)));
    }
    flood.push_str("\r\n");
    let giant = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "z".repeat(1 << 20)
    );
    let raws: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("500 headers", flood.into_bytes(), &[431]),
        ("a 1 MiB header", giant.into_bytes(), &[431]),
        (
            "a Content-Length that is not a number",
            b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            &[400, 413],
        ),
        (
            "80 MiB declared",
            format!("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {w}\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\n\r\n", 80 << 20).into_bytes(),
            &[413],
        ),
        (
            "a chunked body over the limit",
            {
                let mut b = format!("POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {w}\r\nContent-Type: application/cbor\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes();
                for _ in 0..20 {
                    b.extend_from_slice(b"10000\r\n");
                    b.extend_from_slice(&[0x80; 0x10000]);
                    b.extend_from_slice(b"\r\n");
                }
                b.extend_from_slice(b"0\r\n\r\n");
                b
            },
            &[413],
        ),
        ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(), &[400]),
        ("a bad method", b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), &[400]),
    ];
    for (name, bytes, statuses) in &raws {
        let t = Instant::now();
        let got = raw(&addr, bytes);
        if !got.is_some_and(|g| statuses.contains(&g)) {
            wrong.push(format!("{name}: {got:?} (wanted one of {statuses:?})"));
        }
        if t.elapsed() > Duration::from_secs(5) {
            wrong.push(format!("{name}: answered after {:?}", t.elapsed()));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));

    // Nothing was appended, and the server still works.
    assert_eq!(s.tree_size(), 0);
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
    let auth = format!("Bearer {w}");
    let r = s.request(
        "POST",
        "/v1/decisions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/cbor"),
        ],
        &good,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.tree_size(), 1);
}

#[test]
fn slow_heads_are_cut_off_and_connections_are_capped() {
    let s = Server::with_config(
        "header_timeout_ms = 500\nrequest_timeout_ms = 700\nmax_connections = 4\nmax_headers = 30\n",
        &[],
    );

    // A head sent a byte at a time, slower than the deadline: cut off.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut cut = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
        .take(200)
    {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    // The server closed it (end of stream, or a reset), rather than the
    // client's read timing out on a connection still held open.
    let mut rest = Vec::new();
    let closed = match slow.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(cut || closed, "a slow head was not cut off");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "cut after {:?}",
        t.elapsed()
    );
    // A body sent slower than the request deadline: 503 once it passes,
    // nothing appended.
    let mut slow_body = TcpStream::connect(&s.addr).unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        s.writer
    );
    slow_body.write_all(head.as_bytes()).unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while t.elapsed() < Duration::from_secs(5) {
        if slow_body.write_all(b" ").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        slow_body.set_nonblocking(true).unwrap();
        let got = slow_body.read(&mut byte);
        slow_body.set_nonblocking(false).unwrap();
        if let Ok(1) = got {
            answer.push(byte[0]);
            break;
        }
    }
    let _ = slow_body.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("request timed out"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(s.tree_size(), 0);

    // 31 headers: over max_headers.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..31 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(raw(&s.addr, many.as_bytes()), Some(431));

    // Four idle connections hold the cap; the fifth is refused at once.
    // The header deadline frees the cap 500 ms after the idle ones are
    // accepted, so a loaded machine may miss that window: each attempt
    // opens four fresh idle connections and probes only within it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (r, idle) = 'attempts: loop {
        let opened = Instant::now();
        let idle: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(&s.addr).unwrap())
            .collect();
        while opened.elapsed() < Duration::from_millis(300) {
            let t = Instant::now();
            let r = ledger_tests::http(&s.addr, "GET", "/healthz", &[], b"");
            if r.status == 503 {
                assert!(t.elapsed() < Duration::from_secs(2));
                break 'attempts (r, idle);
            }
            assert_eq!(r.status, 200, "{}", r.text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "never refused");
        drop(idle);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("too many open connections"));
    // The idle ones are closed by the header deadline, and the cap frees.
    std::thread::sleep(Duration::from_millis(800));
    drop(idle);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.request("GET", "/healthz", &[], b"").status, 200);
    assert!(
        s.metric("ledger_connections_refused_total") >= 1.0,
        "the refused connections are counted"
    );
}
