//! The GPU kernel: its source (embedded at build time), NVRTC (loaded at run time) to compile it,
//! and precompiled PTX / cubin files for machines without NVRTC.
//!
//! The sources are `cuda/aiq_core.h` (the decision core the host build compiles too) and
//! `cuda/sweep.cu` (the `__global__` wrapper); NVRTC gets the headers as in-memory includes, so
//! what it compiles is byte for byte the text in the repository plus the parameter list the build
//! derived from the config keys (`aiq_params.h`, see `crate::params`), as for the host build.
//! Every GPU build uses [`GPU_OPTIONS`]: `--fmad=false` keeps NVRTC from contracting `a*b+c` into
//! an FMA, which would round differently from the host build (compiled with `-ffp-contract=off`).

use std::ffi::{c_char, CString};
use std::path::{Path, PathBuf};

use cudarc::nvrtc::{result, sys};

use crate::error::GpuError;

/// The decision core's headers (include name, text), as compiled for the host and the GPU.
pub const HEADERS: [(&str, &str); 3] = [
    ("aiq_abi.h", include_str!("../cuda/aiq_abi.h")),
    ("aiq_core.h", include_str!("../cuda/aiq_core.h")),
    ("aiq_params.h", include_str!(concat!(env!("OUT_DIR"), "/aiq_params.h"))),
];
/// The `__global__` wrapper.
pub const SWEEP_CU: &str = include_str!("../cuda/sweep.cu");
/// The kernel's entry point.
pub const KERNEL_NAME: &str = "aiq_sweep";
/// Options of every GPU build (besides the target).
pub const GPU_OPTIONS: [&str; 2] = ["--fmad=false", "--std=c++17"];
/// Environment variable naming libnvrtc.so.12 (e.g. the one in the `nvidia-cuda-nvrtc-cu12` wheel).
pub const NVRTC_ENV: &str = "AIQ_NVRTC_LIB";

/// What NVRTC produces: PTX for a virtual architecture (the driver compiles it for the device
/// at load time) or a cubin for one real architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `compute_XY`: PTX text.
    Ptx(u32),
    /// `sm_XY`: a cubin (ELF), with ptxas's register and spill report in the log.
    Cubin(u32),
}

impl Target {
    /// `compute_90` or `sm_90` (any two- or three-digit compute capability).
    pub fn parse(s: &str) -> Result<Self, GpuError> {
        let bad = || {
            GpuError::Usage(format!(
                "--arch {s:?}: expected compute_XY (PTX) or sm_XY (cubin), e.g. compute_90"
            ))
        };
        let (kind, digits) = if let Some(d) = s.strip_prefix("compute_") {
            (true, d)
        } else if let Some(d) = s.strip_prefix("sm_") {
            (false, d)
        } else {
            return Err(bad());
        };
        if !(2..=3).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let cc: u32 = digits.parse().map_err(|_| bad())?;
        Ok(if kind { Target::Ptx(cc) } else { Target::Cubin(cc) })
    }

    /// The `-arch=` value.
    pub fn arch(&self) -> String {
        match self {
            Target::Ptx(cc) => format!("compute_{cc}"),
            Target::Cubin(cc) => format!("sm_{cc}"),
        }
    }

    /// Every NVRTC option of this build.
    pub fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = GPU_OPTIONS.iter().map(|s| s.to_string()).collect();
        o.push(format!("-arch={}", self.arch()));
        if let Target::Cubin(_) = self {
            // ptxas prints registers, stack and spills per kernel into the program log.
            o.push("--ptxas-options=-v".to_string());
        }
        o
    }
}

/// A compiled kernel image and NVRTC's log (warnings; ptxas's report for a cubin).
#[derive(Debug, Clone)]
pub struct Compiled {
    pub target: Target,
    pub image: Vec<u8>,
    pub log: String,
}

/// Where libnvrtc.so.12 comes from: `explicit` (a flag), else [`NVRTC_ENV`], else the dynamic
/// loader's search path. Loading it by path first makes cudarc's later load by name (which
/// panics when nothing is found) find the same library, because the loader matches the soname.
pub fn load_nvrtc(explicit: Option<&Path>) -> Result<(), GpuError> {
    let from_env = std::env::var_os(NVRTC_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, origin) = match (explicit, from_env) {
        (Some(p), _) => (Some(p.to_path_buf()), "--nvrtc-lib"),
        (None, Some(p)) => (Some(p), NVRTC_ENV),
        (None, None) => (None, ""),
    };
    if let Some(path) = path {
        preload(&path).map_err(|e| GpuError::NvrtcLib { origin, path: path.clone(), reason: e })?;
    }
    // SAFETY: only tries to open the library by its usual names.
    if unsafe { sys::is_culib_present() } {
        Ok(())
    } else {
        Err(GpuError::NoNvrtc)
    }
}

/// Keep a library loaded for the life of the process (RTLD_NOW | RTLD_GLOBAL).
fn preload(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err("no such file".to_string());
    }
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: loading libnvrtc runs its initialisers, which have no preconditions.
    let lib = unsafe { libloading::os::unix::Library::open(Some(path), flags) }.map_err(|e| e.to_string())?;
    std::mem::forget(lib);
    Ok(())
}

/// The NVRTC version, e.g. (12, 9). Call [`load_nvrtc`] first.
pub fn nvrtc_version() -> Result<(i32, i32), GpuError> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-pointers to live integers.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| GpuError::Nvrtc(format!("nvrtcVersion: {e:?}")))?;
    Ok((major, minor))
}

/// Compile the embedded kernel source for `target`. Call [`load_nvrtc`] first.
pub fn compile(target: Target) -> Result<Compiled, GpuError> {
    compile_source(SWEEP_CU, &HEADERS, &target.options(), target)
}

/// Compile `src` (with in-memory `headers`: (include name, text)) with exactly `options`.
pub fn compile_source(
    src: &str,
    headers: &[(&str, &str)],
    options: &[String],
    target: Target,
) -> Result<Compiled, GpuError> {
    let cstr = |s: &str| CString::new(s).map_err(|_| GpuError::Nvrtc("a source contains a NUL byte".into()));
    let src_c = cstr(src)?;
    let name_c = cstr("sweep.cu")?;
    let texts: Vec<CString> = headers.iter().map(|(_, t)| cstr(t)).collect::<Result<_, _>>()?;
    let names: Vec<CString> = headers.iter().map(|(n, _)| cstr(n)).collect::<Result<_, _>>()?;
    let text_ptrs: Vec<*const c_char> = texts.iter().map(|c| c.as_ptr()).collect();
    let name_ptrs: Vec<*const c_char> = names.iter().map(|c| c.as_ptr()).collect();
    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: every pointer refers to a NUL-terminated string that outlives the program.
    unsafe {
        sys::nvrtcCreateProgram(
            &mut prog,
            src_c.as_ptr(),
            name_c.as_ptr(),
            headers.len() as i32,
            text_ptrs.as_ptr(),
            name_ptrs.as_ptr(),
        )
    }
    .result()
    .map_err(|e| GpuError::Nvrtc(format!("nvrtcCreateProgram: {e:?}")))?;
    // SAFETY: `prog` was created above and is destroyed once, below.
    let out = unsafe { compile_created(prog, options, target) };
    // SAFETY: as above.
    let _ = unsafe { result::destroy_program(prog) };
    out
}

/// # Safety
/// `prog` must be a live program from `nvrtcCreateProgram`.
unsafe fn compile_created(
    prog: sys::nvrtcProgram,
    options: &[String],
    target: Target,
) -> Result<Compiled, GpuError> {
    let compiled = result::compile_program(prog, options);
    let log = result::get_program_log(prog).map(|v| c_chars_to_string(&v)).unwrap_or_default();
    if compiled.is_err() {
        return Err(GpuError::Compile { target: target.arch(), log: log.trim().to_string() });
    }
    let image = match target {
        Target::Ptx(_) => {
            let mut v: Vec<u8> = result::get_ptx(prog)
                .map_err(|e| GpuError::Nvrtc(format!("nvrtcGetPTX: {e:?}")))?
                .into_iter()
                .map(|c| c as u8)
                .collect();
            // Written as a text file: no trailing NUL (read_kernel_file adds one back).
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        }
        Target::Cubin(_) => {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size)
                .result()
                .map_err(|e| GpuError::Nvrtc(format!("nvrtcGetCUBINSize: {e:?}")))?;
            let mut v = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog, v.as_mut_ptr().cast())
                .result()
                .map_err(|e| GpuError::Nvrtc(format!("nvrtcGetCUBIN: {e:?}")))?;
            v
        }
    };
    Ok(Compiled { target, image, log })
}

fn c_chars_to_string(v: &[c_char]) -> String {
    let bytes: Vec<u8> = v.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A kernel image ready for the driver: a cubin (ELF) as is, PTX text NUL-terminated.
#[derive(Debug, Clone)]
pub struct KernelImage {
    pub bytes: Vec<u8>,
    pub is_cubin: bool,
    /// Where it came from (a file path or "NVRTC sm_90"), for messages.
    pub origin: String,
}

impl KernelImage {
    /// Read a PTX or cubin file written by `ai-quant-bt gpu-compile`.
    pub fn from_file(path: &Path) -> Result<Self, GpuError> {
        let bytes = std::fs::read(path)
            .map_err(|e| GpuError::KernelFile { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::from_bytes(bytes, path.display().to_string())
            .map_err(|reason| GpuError::KernelFile { path: path.to_path_buf(), reason })
    }

    /// Classify `bytes`: an ELF cubin, or PTX text that defines the kernel's entry point.
    pub fn from_bytes(mut bytes: Vec<u8>, origin: String) -> Result<Self, String> {
        if bytes.starts_with(b"\x7fELF") {
            return Ok(Self { bytes, is_cubin: true, origin });
        }
        let text =
            std::str::from_utf8(&bytes).map_err(|_| "neither a cubin (ELF) nor PTX text".to_string())?;
        if !text.contains(".version") || !text.contains(&format!(".entry {KERNEL_NAME}")) {
            return Err(format!(
                "not PTX with the entry point {KERNEL_NAME} (make it with `ai-quant-bt gpu-compile`)"
            ));
        }
        bytes.push(0);
        Ok(Self { bytes, is_cubin: false, origin })
    }

    pub fn from_compiled(c: Compiled) -> Self {
        let origin = format!("NVRTC {}", c.target.arch());
        let is_cubin = matches!(c.target, Target::Cubin(_));
        let mut bytes = c.image;
        if !is_cubin {
            bytes.push(0);
        }
        Self { bytes, is_cubin, origin }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_carry_the_exactness_options() {
        assert_eq!(Target::parse("compute_90").unwrap(), Target::Ptx(90));
        assert_eq!(Target::parse("sm_90").unwrap(), Target::Cubin(90));
        assert_eq!(Target::parse("sm_100").unwrap(), Target::Cubin(100));
        for bad in ["90", "sm90", "sm_", "compute_9x", "sm_9", "sm_1000", ""] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains("compute_XY") && !e.contains('\n'), "{bad}: {e}");
        }
        let o = Target::Cubin(90).options();
        assert!(o.contains(&"--fmad=false".to_string()) && o.contains(&"-arch=sm_90".to_string()));
        assert!(o.contains(&"--ptxas-options=-v".to_string()));
        assert!(!Target::Ptx(90).options().iter().any(|s| s.contains("ptxas")));
    }

    #[test]
    fn the_embedded_source_is_the_repository_text() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cuda");
        // Every header in cuda/ is embedded (NVRTC sees no file system), with its current text.
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".h"))
            .collect();
        on_disk.sort();
        // ... and the generated parameter list, the text the host build includes.
        on_disk.push("aiq_params.h".into());
        let embedded: Vec<String> = HEADERS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(embedded, on_disk);
        // (aiq_params.h is the build's own output, embedded from where the build wrote it.)
        for (name, text) in HEADERS.iter().filter(|(n, _)| *n != "aiq_params.h") {
            assert_eq!(*text, std::fs::read_to_string(dir.join(name)).unwrap(), "{name}");
        }
        assert_eq!(SWEEP_CU, std::fs::read_to_string(dir.join("sweep.cu")).unwrap());
        assert!(SWEEP_CU.contains("#include \"aiq_core.h\""));
        assert!(SWEEP_CU.contains(&format!("__global__ void {KERNEL_NAME}(")));
    }

    #[test]
    fn kernel_files_are_classified_and_bad_ones_named() {
        let ptx = b"//\n.version 8.8\n.target sm_90\n.visible .entry aiq_sweep(\n".to_vec();
        let k = KernelImage::from_bytes(ptx, "x.ptx".into()).unwrap();
        assert!(!k.is_cubin && k.bytes.last() == Some(&0));
        let k = KernelImage::from_bytes(b"\x7fELF\x02\x01".to_vec(), "x.cubin".into()).unwrap();
        assert!(k.is_cubin);
        assert!(KernelImage::from_bytes(b".version 8.8\n.entry other(".to_vec(), "y".into()).is_err());
        let e = KernelImage::from_file(Path::new("/nonexistent/k.ptx")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/k.ptx") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn a_missing_nvrtc_library_is_an_error_naming_the_path() {
        let e = load_nvrtc(Some(Path::new("/nonexistent/libnvrtc.so.12"))).unwrap_err().to_string();
        assert!(e.contains("--nvrtc-lib /nonexistent/libnvrtc.so.12") && e.contains("no such file"), "{e}");
        assert!(!e.contains('\n'));
    }
}
