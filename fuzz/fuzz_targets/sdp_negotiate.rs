#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::sdp::fuzz::sdp_negotiate(data));
