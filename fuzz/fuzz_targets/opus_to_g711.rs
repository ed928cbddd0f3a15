#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait_codec::fuzz::opus_to_g711(data));
