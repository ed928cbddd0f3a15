//! The auth fuzz entry point over real credentials and mutations of them
//! (a smoke test of the body the cargo-fuzz crate calls).
#![cfg(feature = "fuzz")]

use proptest::prelude::*;
use strait::auth::fuzz::auth_verify;

const SEEDS: [&str; 6] = [
    r#"Digest algorithm=MD5, username="alice", realm="strait", nonce="AAAAAGVT8QAAAAAAAAAAAKIo1GO14PUYHfYpYKC80_c", uri="sip:localhost", response="9899801c0e2e22e512f79bc13118b72d", qop=auth, cnonce="k3sl2c0q5n8d", nc=00000001"#,
    r#"Digest username="1700000600:carol", realm="strait", nonce="x", uri="sip:localhost", response="00000000000000000000000000000000""#,
    r#"Digest username="alice", realm="strait", nonce="AAAAAGVT8QAAAAAAAAAAAKIo1GO14PUYHfYpYKC80_c", uri="sip:localhost", response="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", algorithm=SHA-512-256-sess, qop=auth-int, nc=ffffffff, cnonce="c""#,
    "Bearer abc==",
    "Digest realm=\"unterminated",
    "Digest a=b, a=b, ,,=",
];

#[test]
fn seeds_and_junk() {
    for s in SEEDS {
        auth_verify(s.as_bytes());
        auth_verify(format!("{s}\nbody").as_bytes());
    }
    for junk in [
        &b""[..],
        b"\xff\xfe\n\xff",
        &[0u8; 64],
        b"\n\n\n",
        b"\\\\\\\"",
    ] {
        auth_verify(junk);
    }
}

proptest! {
    #[test]
    fn mutated_seeds(i in 0usize..SEEDS.len(), edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8)) {
        let mut b = SEEDS[i].as_bytes().to_vec();
        for (pos, byte) in edits {
            let p = pos % (b.len() + 1);
            if byte & 1 == 0 && p < b.len() {
                b[p] = byte;
            } else if byte & 2 == 0 && p < b.len() {
                b.remove(p);
            } else {
                b.insert(p, byte);
            }
        }
        auth_verify(&b);
    }

    #[test]
    fn arbitrary_bytes(b in prop::collection::vec(any::<u8>(), 0..300)) {
        auth_verify(&b);
    }
}
