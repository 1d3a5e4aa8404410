//! Fuzz target `base64_bin`: see `bare_grpc::fuzz::base64_bin` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::base64_bin(data));
