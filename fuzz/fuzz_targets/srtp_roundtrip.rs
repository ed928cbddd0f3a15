#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_srtp::fuzz::srtp_roundtrip(data));
