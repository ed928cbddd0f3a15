#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_dataplane::fuzz::stun_check(data));
