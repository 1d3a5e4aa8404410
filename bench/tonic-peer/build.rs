//! Compiles the benchmark contracts with tonic's own code generator.

fn main() {
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    // SAFETY: a build script runs on one thread; prost-build reads PROTOC from the env.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [root.join("helloworld.proto"), root.join("bench.proto")];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    tonic_prost_build::configure()
        .compile_protos(&files, &[root])
        .expect("compile bench protos");
}
