//! HTTPS end to end: ledgerd serves TLS with a certificate from a private
//! CA; ledgerctl ships and proves over it when given the CA (--ca), and
//! refuses a server it cannot check; a renewed certificate is served
//! without a restart; bad certificate settings stop ledgerd with a reason;
//! with mutual TLS, only certified clients connect, and a token bound to a
//! certificate is refused from any other.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ledger_tests::{ok, refused, run, Server};

/// A CA, and a certificate it issued for 127.0.0.1 and localhost: writes
/// `ca.pem`, `server.pem`, `server.key` in `dir`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    issued(dir, "server", &["127.0.0.1", "localhost"])
}

/// A CA named after `who`, and a certificate it issued for `names`:
/// writes `ca.pem`, `<who>.pem`, `<who>.key` in `dir`.
fn issued(dir: &Path, who: &str, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, mut leaves) = issued_to(dir, who, &[(who, names)]);
    let (cert, key) = leaves.remove(0);
    (ca, cert, key)
}

/// A CA named after `who` (`dir/ca.pem`), and for each `(leaf, names)` a
/// certificate it issued for those names (`dir/<leaf>.pem`, `.key`): a
/// name with `://` is a URI subjectAltName (a SPIFFE ID), an address an IP
/// one, any other a DNS one.
fn issued_to(
    dir: &Path,
    who: &str,
    leaves: &[(&str, &[&str])],
) -> (PathBuf, Vec<(PathBuf, PathBuf)>) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("decision ledger test CA for {who}"),
    );
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let leaves = leaves
        .iter()
        .map(|(leaf, names)| {
            let key = rcgen::KeyPair::generate().unwrap();
            let dns: Vec<String> = names
                .iter()
                .filter(|n| !n.contains("://"))
                .map(|n| n.to_string())
                .collect();
            let mut params = rcgen::CertificateParams::new(dns).unwrap();
            for uri in names.iter().filter(|n| n.contains("://")) {
                let uri = (*uri).try_into().unwrap();
                params.subject_alt_names.push(rcgen::SanType::URI(uri));
            }
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            let paths = (
                dir.join(format!("{leaf}.pem")),
                dir.join(format!("{leaf}.key")),
            );
            std::fs::write(&paths.0, cert.pem()).unwrap();
            std::fs::write(&paths.1, key.serialize_pem()).unwrap();
            paths
        })
        .collect();
    (ca_path, leaves)
}

/// A JSON-lines file in `dir` with one decision, `id`.
fn one_record(dir: &Path, id: &str) -> PathBuf {
    let path = dir.join(format!("{id}.jsonl"));
    let mut one = ledger_tests::records(id, 1)[0].clone();
    one["decision_id"] = id.into();
    std::fs::write(&path, format!("{one}\n")).unwrap();
    path
}

/// `ledgerctl --url URL --ca CA --token TOKEN` presenting the client
/// certificate `(cert, key)`, with `rest`.
fn as_client(
    url: &str,
    ca: &Path,
    (cert, key): (&Path, &Path),
    token: &str,
    rest: &[&str],
) -> ledger_tests::Run {
    let tls = ["--url", url, "--ca", p(ca), "--token", token];
    let id = ["--client-cert", p(cert), "--client-key", p(key)];
    run("ledgerctl", &[&tls[..], &id[..], rest].concat())
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn records_are_shipped_and_proven_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &["--tls-cert", p(&cert), "--tls-key", p(&key)]);
    let url = format!("https://{}", s.addr);
    let records = dir.path().join("records.jsonl");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/decision.json"),
    )
    .unwrap();
    let one_line: serde_json::Value = serde_json::from_str(&example).unwrap();
    std::fs::write(&records, format!("{one_line}\n")).unwrap();

    // ledgerctl against the HTTPS url, trusting the test CA.
    let over_https = |token: &str, rest: &[&str]| {
        let args = [&["--url", &url, "--ca", p(&ca), "--token", token][..], rest].concat();
        run("ledgerctl", &args)
    };
    let shipped = over_https(&s.writer, &["ship", p(&records)]);
    assert!(shipped.stdout.contains("1 appended"), "{}", shipped.stderr);

    // Evidence over HTTPS, checked before it is written, then offline.
    let pub_key = data.join("log.pub");
    let evidence = dir.path().join("d.evidence");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = over_https(
            &s.reader,
            &[
                "--key",
                p(&pub_key),
                "evidence",
                "example-0001",
                "--out",
                p(&evidence),
            ],
        );
        if r.code == 0 {
            break;
        }
        // 503 until a checkpoint covers the decision.
        assert!(Instant::now() < deadline, "{}", r.stderr);
        std::thread::sleep(Duration::from_millis(100));
    }
    let verdict = ok(
        "ledger-verify",
        &["evidence", p(&evidence), "--key", p(&pub_key)],
    );
    assert!(verdict.starts_with("OK: evidence verified"), "{verdict}");

    // A mirror follows the log over HTTPS, and audits clean.
    let mirror = dir.path().join("mirror");
    let r = over_https(
        &s.reader,
        &[
            "--key",
            p(&pub_key),
            "--data",
            p(&mirror),
            "mirror",
            "--once",
        ],
    );
    assert!(
        r.code == 0 && r.stdout.contains(": 1 leaf of"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let audited = ok(
        "ledgerctl",
        &["audit", "--mirror", p(&mirror), "--key", p(&pub_key)],
    );
    assert!(audited.starts_with("audit OK: 1 entries"), "{audited}");

    // A server ledgerctl cannot check (no --ca: Mozilla's roots) is refused,
    // with the way out named; plain HTTP to the TLS port gets no answer.
    refused(
        "ledgerctl",
        &["--url", &url, "--key", p(&pub_key), "checkpoint"],
        "--ca",
    );
    let plain = format!("http://{}", s.addr);
    refused(
        "ledgerctl",
        &["--url", &plain, "--key", p(&pub_key), "checkpoint"],
        "use an https:// URL",
    );
    // And an https URL for a server that speaks plain HTTP.
    let plain_server = Server::start(&[]);
    let wrong = format!("https://{}", plain_server.addr);
    refused(
        "ledgerctl",
        &[
            "--url",
            &wrong,
            "--ca",
            p(&ca),
            "--key",
            p(&pub_key),
            "checkpoint",
        ],
        "use an http:// URL",
    );
}

#[test]
fn bad_certificate_settings_stop_ledgerd_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let data = dir.path().join("data");
    let base = ["--data", p(&data), "--listen", "127.0.0.1:0"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let missing = dir.path().join("missing");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--tls-cert", p(&cert)],
            "needs both --tls-cert and --tls-key",
        ),
        // The CA's certificate with the server's key: not a pair.
        (
            &["--tls-cert", p(&ca), "--tls-key", p(&key)],
            "--tls-cert and --tls-key:",
        ),
        (
            &["--tls-cert", p(&key), "--tls-key", p(&key)],
            "holds no PEM certificate",
        ),
        (
            &["--tls-cert", p(&cert), "--tls-key", p(&missing)],
            "--tls-key",
        ),
        // Mutual TLS needs HTTPS, and a file of CA certificates.
        (&["--tls-client-ca", p(&ca)], "needs HTTPS"),
        (
            &[
                "--tls-cert",
                p(&cert),
                "--tls-key",
                p(&key),
                "--tls-client-ca",
                p(&key),
            ],
            "holds no PEM certificate",
        ),
    ];
    for (extra, reason) in cases {
        refused("ledgerd", &with(&base, extra), reason);
    }
}

/// Mutual TLS: with --tls-client-ca, only clients presenting a certificate
/// from that CA complete a handshake; ledgerctl presents one with
/// --client-cert and --client-key; tokens are still required.
#[test]
fn mutual_tls_admits_only_clients_with_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(&dir.path().join("server"));
    let (clients_ca, client, client_key) =
        issued(&dir.path().join("clients"), "gw-eu-1", &["gw-eu-1.example"]);
    let (_, stranger, stranger_key) =
        issued(&dir.path().join("stranger"), "gw-x", &["gw-x.example"]);
    // Set in the config file; the flag is checked in
    // bad_certificate_settings_stop_ledgerd_with_a_reason.
    let s = Server::with_config(
        &format!(
            "tls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
            p(&cert),
            p(&key),
            p(&clients_ca)
        ),
        &[],
    );
    let data = s.data.clone();
    let url = format!("https://{}", s.addr);
    let records = |id: &str| one_record(dir.path(), id);
    let as_client = |cert: &Path, key: &Path, token: &str, rest: &[&str]| {
        as_client(&url, &ca, (cert, key), token, rest)
    };

    // With the CA's client certificate and a token: appended and readable.
    let admitted = records("mtls-1");
    let r = as_client(&client, &client_key, &s.writer, &["ship", p(&admitted)]);
    assert!(r.stdout.contains("1 appended"), "{}{}", r.stdout, r.stderr);
    let pub_key = data.join("log.pub");
    let key_args = ["--key", p(&pub_key)];
    let read = |id: &str| {
        as_client(
            &client,
            &client_key,
            &s.reader,
            &[&key_args[..], &["decision", id]].concat(),
        )
    };
    assert_eq!(read("mtls-1").code, 0);
    // The certificate does not stand in for a token.
    let r = as_client(
        &client,
        &client_key,
        "dlt_not-a-token",
        &["ship", p(&admitted)],
    );
    assert_ne!(r.code, 0, "{}", r.stdout);

    // Without a certificate, or with one from another CA: no handshake,
    // nothing appended.
    let refused_file = records("mtls-2");
    let tls = ["--url", &url, "--ca", p(&ca), "--token", &s.writer];
    let r = run(
        "ledgerctl",
        &[&tls[..], &["ship", p(&refused_file)]].concat(),
    );
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("give --client-cert"), "{}", r.stderr);
    let r = as_client(
        &stranger,
        &stranger_key,
        &s.writer,
        &["ship", p(&refused_file)],
    );
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("does not accept this client certificate"),
        "{}",
        r.stderr
    );
    assert_ne!(read("mtls-2").code, 0, "a refused client appended nothing");

    // A certificate without its key, and a key that is not PEM: named.
    refused(
        "ledgerctl",
        &[&tls[..], &["--client-cert", p(&client), "checkpoint"]].concat(),
        "needs both --client-cert and --client-key",
    );
    refused(
        "ledgerctl",
        &[
            &tls[..],
            &[
                "--client-cert",
                p(&client),
                "--client-key",
                p(&client),
                "checkpoint",
            ],
        ]
        .concat(),
        "--client-cert/--client-key",
    );
}

/// A token bound to a client certificate (`token add --cert NAME`) is
/// accepted only over a connection whose certificate carries that name:
/// copied to another machine of the same mesh (another SPIFFE ID from the
/// same CA), it is refused with 401 and nothing is appended. Unbound
/// tokens work from any certified client; without mutual TLS a bound token
/// is refused and says why.
#[test]
fn a_token_bound_to_a_certificate_is_refused_from_another() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(&dir.path().join("server"));
    let mesh = "spiffe://mesh.example/ns/prod/sa";
    let (gw1_id, gw2_id) = (format!("{mesh}/gw-eu-1"), format!("{mesh}/gw-eu-2"));
    let (clients_ca, leaves) = issued_to(
        &dir.path().join("clients"),
        "mesh",
        &[
            ("gw-eu-1", &[&gw1_id]),
            ("gw-eu-2", &[&gw2_id, "gw-eu-2.example"]),
        ],
    );
    let ((gw1, gw1_key), (gw2, gw2_key)) = (&leaves[0], &leaves[1]);
    let data = dir.path().join("data");
    let s = Server::start_in(
        &data,
        &[
            "--tls-cert",
            p(&cert),
            "--tls-key",
            p(&key),
            "--tls-client-ca",
            p(&clients_ca),
        ],
    );
    let bound = s.add_token(&["--enforcer", "gw", "--role", "writer", "--cert", &gw1_id]);
    let listed = ok("ledgerctl", &["--data", p(&s.data), "token", "list"]);
    assert!(
        listed.contains(&format!("writer gw cert {gw1_id}")),
        "{listed}"
    );

    let url = format!("https://{}", s.addr);
    let records = |id: &str| one_record(dir.path(), id);
    let as_client = |cert: &Path, key: &Path, token: &str, rest: &[&str]| {
        as_client(&url, &ca, (cert, key), token, rest)
    };

    // From its own machine: appended.
    let r = as_client(gw1, gw1_key, &bound, &["ship", p(&records("bound-1"))]);
    assert!(r.stdout.contains("1 appended"), "{}{}", r.stdout, r.stderr);
    // From another machine of the mesh: refused, and it says why.
    let r = as_client(gw2, gw2_key, &bound, &["ship", p(&records("bound-2"))]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("bound to a client certificate naming {gw1_id}"))
            && r.stderr
                .contains(&format!("names gw-eu-2.example, {gw2_id}")),
        "{}",
        r.stderr
    );
    // The reader token is not bound: it reads from either machine.
    let read = |cert: &Path, key: &Path, id: &str| {
        as_client(cert, key, &s.reader, &["--key", &s.key, "decision", id]).code
    };
    assert_eq!(read(gw2, gw2_key, "bound-1"), 0);
    assert_ne!(
        read(gw1, gw1_key, "bound-2"),
        0,
        "the refused record was appended"
    );

    // Without mutual TLS no connection presents a certificate: the bound
    // token is refused, unbound ones are not.
    let writer = s.writer.clone();
    s.stop();
    let s = Server::start_in(&data, &["--tls-cert", p(&cert), "--tls-key", p(&key)]);
    let tls = ["--url", &url.replace(&url[8..], &s.addr), "--ca", p(&ca)];
    let r = run(
        "ledgerctl",
        &[
            &tls[..],
            &["--token", &bound, "ship", p(&records("bound-3"))],
        ]
        .concat(),
    );
    assert!(
        r.code != 0 && r.stderr.contains("presented no client certificate"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let r = run(
        "ledgerctl",
        &[
            &tls[..],
            &["--token", &writer, "ship", p(&records("bound-4"))],
        ]
        .concat(),
    );
    assert!(r.stdout.contains("1 appended"), "{}{}", r.stdout, r.stderr);
}

/// A client that opens a connection and never starts the TLS handshake,
/// or stops in the middle of it, is closed within `header_timeout_ms`:
/// it cannot hold a connection slot; `/metrics` counts both.
#[test]
fn a_stalled_handshake_is_closed() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let s = Server::with_config(
        "header_timeout_ms = 300\n",
        &["--tls-cert", p(&cert), "--tls-key", p(&key)],
    );
    for first_bytes in [&b""[..], &[0x16, 0x03, 0x01, 0x00, 0xff][..]] {
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(first_bytes).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 16];
        // The server ends the connection (EOF or reset), well before 5 s.
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a stalled handshake was not closed: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // Both counted in /metrics, read over HTTPS.
    let pem = std::fs::read(&ca).unwrap();
    let roots: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i.unwrap() {
            ureq::tls::PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(roots))
                .build(),
        )
        .build()
        .into();
    let metrics = agent
        .get(format!("https://{}/metrics", s.addr))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("ledger_tls_handshakes_failed_total 2\n"),
        "{metrics}"
    );
}

/// A certificate renewed while ledgerd runs (new files renamed into place)
/// is served from the next connection on; a pair that does not match is
/// not, and the one before it goes on being served.
#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert, key) = certificates(&dir.path().join("first"));
    let (ca2, cert2, key2) = certificates(&dir.path().join("renewed"));
    let (_, cert3, _) = certificates(&dir.path().join("other"));
    // ledgerd reads the files at one place; renewals are renamed over them.
    let (served_cert, served_key) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    let put = |from: &Path, to: &Path| {
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    };
    put(&cert, &served_cert);
    put(&key, &served_key);
    let s = Server::start_in(
        &dir.path().join("data"),
        &["--tls-cert", p(&served_cert), "--tls-key", p(&served_key)],
    );
    let url = format!("https://{}", s.addr);
    let key_file = dir.path().join("data/log.pub");
    let checkpoint = |ca: &Path| {
        run(
            "ledgerctl",
            &[
                "--url",
                &url,
                "--ca",
                p(ca),
                "--key",
                p(&key_file),
                "checkpoint",
            ],
        )
    };
    assert_eq!(checkpoint(&ca1).code, 0);
    put(&key2, &served_key);
    put(&cert2, &served_cert);
    assert_eq!(
        checkpoint(&ca2).code,
        0,
        "the renewed certificate is served"
    );
    assert_ne!(checkpoint(&ca1).code, 0, "the old one is not");
    // A certificate whose key is not the one beside it: not served.
    put(&cert3, &served_cert);
    assert_eq!(checkpoint(&ca2).code, 0, "the last good pair goes on");
}

/// A witness serving HTTPS with a private CA's certificate: ledgerd trusts
/// it with --witness-ca, and not without it (the failure is counted, the
/// log goes on).
#[test]
fn a_witness_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(&dir.path().join("tls"));
    let data = dir.path().join("data");
    let log_key = ok(
        "ledgerctl",
        &["keygen", "--origin", "tls.test/log", "--out", p(&data)],
    )
    .trim()
    .to_string();
    let wdir = dir.path().join("w");
    let wkey = ok(
        "ledgerctl",
        &[
            "witness",
            "keygen",
            "--name",
            "witness.test/tls",
            "--out",
            p(&wdir),
        ],
    )
    .trim()
    .to_string();
    let w = ledger_tests::Witness::start(
        &wdir,
        &log_key,
        &["--tls-cert", p(&cert), "--tls-key", p(&key)],
    );
    assert!(w.url.starts_with("https://127.0.0.1:"), "{}", w.url);

    let s = Server::start_in(&data, &["--witness", &w.url, &wkey, "--witness-ca", p(&ca)]);
    let writer = s.writer.clone();
    s.append(&ledger_tests::records("t", 3));
    ledger_tests::cosigned(&s, "witness.test/tls", 3);
    drop(s);

    // Without the CA, the witness's certificate is not trusted.
    let mut s = Server::start_in(&data, &["--witness", &w.url, &wkey]);
    s.writer = writer.clone();
    s.append(&ledger_tests::records("u", 2));
    ledger_tests::witness_failed(&s, "witness.test/tls");
    assert_eq!(s.tree_size(), 5);
    drop((s, w));

    // A witness that admits only logs with a certificate from its
    // clients' CA: refused without one, cosigning with one.
    let (clients_ca, client, client_key) =
        issued(&dir.path().join("clients"), "ledger", &["ledger.example"]);
    let w = ledger_tests::Witness::start(
        &wdir,
        &log_key,
        &[
            "--tls-cert",
            p(&cert),
            "--tls-key",
            p(&key),
            "--tls-client-ca",
            p(&clients_ca),
        ],
    );
    let to_witness = ["--witness", &w.url, &wkey, "--witness-ca", p(&ca)];
    let mut s = Server::start_in(&data, &to_witness);
    s.writer = writer.clone();
    s.append(&ledger_tests::records("v", 1));
    ledger_tests::witness_failed(&s, "witness.test/tls");
    drop(s);
    let identity = [
        "--witness-client-cert",
        p(&client),
        "--witness-client-key",
        p(&client_key),
    ];
    let mut s = Server::start_in(&data, &[&to_witness[..], &identity[..]].concat());
    s.writer = writer;
    s.append(&ledger_tests::records("x", 1));
    ledger_tests::cosigned(&s, "witness.test/tls", 7);
    refused(
        "ledgerd",
        &[
            "--data",
            p(&dir.path().join("other")),
            "--listen",
            "127.0.0.1:0",
            "--witness-client-cert",
            p(&client),
        ],
        "needs both --witness-client-cert and --witness-client-key",
    );
    // A CA file that does not hold one stops ledgerd, naming it.
    let r = run(
        "ledgerd",
        &[
            "--data",
            p(&dir.path().join("other")),
            "--listen",
            "127.0.0.1:0",
            "--witness-ca",
            p(&key),
        ],
    );
    assert!(
        r.code == 1 && r.stderr.contains("CA certificate"),
        "{}",
        r.stderr
    );
}
