#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::sip::fuzz::sip_parse(data));
