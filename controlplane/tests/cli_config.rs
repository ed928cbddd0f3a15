//! The `strait` binary refuses a bad configuration at start-up with a
//! message naming the key and the reason, and accepts the embedded default.

use std::process::Command;

fn strait(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_are_refused_naming_key_and_reason() {
    let dir = std::env::temp_dir().join(format!("strait-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (toml, key, reason) in [
        (
            "[media]\nport_min = 20001\n",
            "media.port_min",
            "must be even",
        ),
        (
            "[sip]\nwss = \"nowhere\"\n",
            "sip.wss",
            "not an address:port",
        ),
        (
            "[auth]\nusers = [{ name = \"x\", password = \"\" }]\n",
            "auth.users",
            "empty password",
        ),
        (
            "[routing]\ndefault_nexthop = \"sip:a\"\n",
            "default_nexthop",
            "unknown field",
        ),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let (code, _, err) = strait(&["--config", path.to_str().unwrap(), "--check-config"]);
        assert_eq!(code, 2, "{toml}");
        assert!(err.contains(key) && err.contains(reason), "{toml}: {err}");
    }
    let (code, _, err) = strait(&["--config", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_embedded_default_is_valid_and_printable() {
    let (code, out, _) = strait(&["--check-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("valid"));
    let (code, out, _) = strait(&["--print-default-config"]);
    assert_eq!(code, 0);
    assert!(out.contains("[media]") && out.contains("port_min = 20000"));
}
