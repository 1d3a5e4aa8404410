//! Fuzz target `message_decoder`: see `bare_grpc::fuzz::message_decoder` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::message_decoder(data));
