#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::sip::txn::fuzz::txn_script(data));
