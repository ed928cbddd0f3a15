//! The transaction layer's fuzz body over random scripts (a smoke test of
//! what the cargo-fuzz target runs): invariants hold after every operation,
//! every message the layer sends parses, and everything ends within an hour.
#![cfg(feature = "fuzz")]

use proptest::prelude::*;
use strait::sip::txn::fuzz::txn_script;

#[test]
fn fixed_scripts() {
    txn_script(&[]);
    txn_script(&[0]);
    // INVITE in, 180 from the core, CANCEL in, 487, ACK, timers.
    txn_script(&[2, 0, 0, 0, 3, 0, 1, 0, 4, 0, 3, 0, 8, 0, 3, 0, 0, 6, 0, 0]);
    // Client INVITE, CANCEL held, 180, 200 for CANCEL, 487, time.
    txn_script(&[1, 2, 0, 0, 4, 0, 0, 1, 1, 0, 1, 3, 2, 1, 8, 0, 5, 255, 255]);
    // Overload: many new requests.
    let mut many = vec![1];
    for i in 0..40u8 {
        many.extend_from_slice(&[0, i, i]);
    }
    txn_script(&many);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_scripts(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        txn_script(&data);
    }

    #[test]
    fn structured_scripts(ops in proptest::collection::vec((0u8..10, any::<u8>(), any::<u8>()), 0..80)) {
        let mut data = vec![ops.len() as u8];
        for (op, a, b) in ops {
            data.extend_from_slice(&[op, a, b]);
        }
        txn_script(&data);
    }
}
