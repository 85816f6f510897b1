//! Compiles the decision core (cuda/*.h) for the host with the same floating-point rules the GPU
//! build uses: no FMA contraction, no fast math, so host and GPU results are bit-identical.
fn main() {
    println!("cargo:rerun-if-changed=cuda");
    cc::Build::new()
        .cpp(true)
        .file("cuda/host.cpp")
        .flag("-std=c++17")
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag_if_supported("-fexcess-precision=standard")
        .warnings(true)
        .compile("aiq_core_host");
}
