#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::registrar::fuzz::registrar_register(data));
