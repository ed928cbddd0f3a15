#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_loadtest::fuzz::rtp_receive(data));
