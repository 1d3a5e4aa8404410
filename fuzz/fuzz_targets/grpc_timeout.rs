//! Fuzz target `grpc_timeout`: see `bare_grpc::fuzz::grpc_timeout` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::grpc_timeout(data));
