#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_codec::fuzz::g711_to_opus(data));
