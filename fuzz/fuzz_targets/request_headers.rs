//! Fuzz target `request_headers`: see `bare_grpc::fuzz::request_headers` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::request_headers(data));
