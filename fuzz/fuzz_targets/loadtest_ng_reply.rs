#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_loadtest::fuzz::ng_reply(data));
