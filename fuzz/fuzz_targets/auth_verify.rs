#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::auth::fuzz::auth_verify(data));
