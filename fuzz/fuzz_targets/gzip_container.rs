//! Fuzz target `gzip_container`: see `bare_grpc::fuzz::gzip_container` for what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bare_grpc::fuzz::gzip_container(data));
