//! Writes the decision core's parameter list from the config keys (src/params.rs: `aiq_params.h`
//! and `params_list.rs` in `$OUT_DIR`), then compiles the core (cuda/*.h) for the host with the
//! same floating-point rules the GPU build uses: no FMA contraction, no fast math, so host and
//! GPU results are bit-identical.

#[path = "src/params.rs"]
mod params;

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=cuda");
    println!("cargo:rerun-if-changed=src/params.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let list = params::derive(&aiq_config::schema::FIELDS);
    std::fs::write(out.join("aiq_params.h"), params::render_header(&list)).expect("write aiq_params.h");
    std::fs::write(out.join("params_list.rs"), params::render_rust(&list)).expect("write params_list.rs");
    cc::Build::new()
        .cpp(true)
        .file("cuda/host.cpp")
        .include(&out)
        .flag("-std=c++17")
        .flag("-ffp-contract=off")
        .flag("-fno-fast-math")
        .flag_if_supported("-fexcess-precision=standard")
        .warnings(true)
        .compile("aiq_core_host");
}
