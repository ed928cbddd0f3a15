#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_srtp::fuzz::srtcp_unprotect(data));
