//! The verifier is the trust root: it must not depend on storage, async
//! runtimes or network crates (`cargo tree -p verifier`).

#[test]
fn verifier_has_no_storage_runtime_or_network_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "verifier",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.contains("ed25519-dalek"),
        "cargo tree output looks wrong:\n{tree}"
    );
    let forbidden = [
        "rocksdb",
        "librocksdb",
        "tokio",
        "axum",
        "hyper",
        "reqwest",
        "mio",
        "socket2",
        "h2",
        "tower",
    ];
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        assert!(
            !forbidden.contains(&name),
            "verifier depends on {name}:\n{tree}"
        );
    }
}
