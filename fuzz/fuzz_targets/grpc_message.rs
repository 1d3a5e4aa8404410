//! Fuzz target `grpc_message`: see `bare_grpc::fuzz::grpc_message` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::grpc_message(data));
