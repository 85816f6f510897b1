//! The GPU path's error, shared by the driver ([`crate::gpu`]) and the kernel compiler
//! ([`crate::nvrtc`]).

use std::path::PathBuf;

use cudarc::driver::DriverError;

/// Why the GPU path cannot run; each message is one line naming what is missing or wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no CUDA driver: libcuda.so.1 was not found (install the NVIDIA driver on a machine with a GPU)"
    )]
    NoDriver,
    #[error("no CUDA device: {0}")]
    NoDevice(String),
    #[error("CUDA driver error in {what}: {reason}")]
    Driver { what: String, reason: String },
    #[error(
        "NVRTC not found: libnvrtc.so.12 is not on the library path (pip install nvidia-cuda-nvrtc-cu12==12.9.86 and pass \
         --nvrtc-lib .../nvidia/cuda_nvrtc/lib/libnvrtc.so.12 or set AIQ_NVRTC_LIB), or load a kernel made by \
         `ai-quant-bt gpu-compile` with --gpu-kernel FILE"
    )]
    NoNvrtc,
    #[error("{origin} {}: cannot load NVRTC: {reason}", path.display())]
    NvrtcLib { origin: &'static str, path: PathBuf, reason: String },
    #[error("NVRTC: {0}")]
    Nvrtc(String),
    #[error("NVRTC could not compile the kernel for {target}: {}", log.replace('\n', " | "))]
    Compile { target: String, log: String },
    #[error("--gpu-kernel {}: {reason}", path.display())]
    KernelFile { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("device memory: {0}")]
    Memory(String),
}

impl GpuError {
    pub(crate) fn driver(what: &str, e: DriverError) -> Self {
        let reason = match e.error_string() {
            Ok(s) => format!("{} ({:?})", s.to_string_lossy(), e.0),
            Err(_) => format!("{:?}", e.0),
        };
        GpuError::Driver { what: what.to_string(), reason }
    }
}
