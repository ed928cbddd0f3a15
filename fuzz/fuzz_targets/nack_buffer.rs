#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_rtp::fuzz::nack_buffer(data));
