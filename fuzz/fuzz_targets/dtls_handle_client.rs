#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strait::dtls::fuzz::dtls_handle_client(data));
