#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::sip::fuzz::http_head(data));
