#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::ng::fuzz::session(data));
