//! The GPU backend: the decision core (cuda/aiq_core.h through cuda/sweep.cu) run by the CUDA
//! driver, one thread per combo. Inputs are uploaded once per sweep; combos run in batches sized
//! to the device's free memory; only result rows come back.
//!
//! Everything up to the first driver call is plain Rust that runs (and is tested) on machines
//! with no CUDA: missing libraries and devices are [`GpuError`]s with one line naming what is
//! missing, never a panic (cudarc panics when it cannot find a library, so presence is checked
//! first).

use std::path::PathBuf;
use std::sync::Arc;

use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, DriverError, LaunchConfig,
    PushKernelArg,
};

use crate::abi::{AiqParams, AiqResult, AiqSnap, AiqSweepArgs};
use crate::{CoreBackend, CoreError, CoreInputs};

use crate::nvrtc::{self, KernelImage, Target};

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
    fn driver(what: &str, e: DriverError) -> Self {
        let reason = match e.error_string() {
            Ok(s) => format!("{} ({:?})", s.to_string_lossy(), e.0),
            Err(_) => format!("{:?}", e.0),
        };
        GpuError::Driver { what: what.to_string(), reason }
    }
}

/// Is libcuda loadable? (cudarc panics on its first call when it is not.)
pub fn driver_present() -> bool {
    // SAFETY: only tries to open the library by its usual names.
    unsafe { sys::is_culib_present() }
}

/// Open device `ordinal` after checking, in order, the driver library, the driver's init and the
/// device count; each failure is its own one-line error.
pub fn open_device(ordinal: usize) -> Result<Arc<CudaContext>, GpuError> {
    if !driver_present() {
        return Err(GpuError::NoDriver);
    }
    let count = match CudaContext::device_count() {
        Ok(n) => n,
        Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => {
            return Err(GpuError::NoDevice("the driver is installed but reports no CUDA device".into()))
        }
        Err(e) => return Err(GpuError::driver("cuInit", e)),
    };
    if count <= 0 {
        return Err(GpuError::NoDevice("the driver is installed but reports no CUDA device".into()));
    }
    if ordinal >= count as usize {
        return Err(GpuError::NoDevice(format!(
            "--gpu-device {ordinal}: the driver reports {count} device(s)"
        )));
    }
    CudaContext::new(ordinal).map_err(|e| GpuError::driver("cuCtx (device open)", e))
}

/// Where the kernel comes from: a file made by `ai-quant-bt gpu-compile` (PTX or cubin), or
/// NVRTC at run time (compiled for the opened device's compute capability).
#[derive(Debug, Clone)]
pub enum KernelSource {
    File(PathBuf),
    Nvrtc { lib: Option<PathBuf> },
}

impl KernelSource {
    /// The image for a device of compute capability `cc` (e.g. 90).
    pub fn image(&self, cc: u32) -> Result<KernelImage, GpuError> {
        match self {
            KernelSource::File(p) => KernelImage::from_file(p),
            KernelSource::Nvrtc { lib } => {
                nvrtc::load_nvrtc(lib.as_deref())?;
                Ok(KernelImage::from_compiled(nvrtc::compile(Target::Cubin(cc))?))
            }
        }
    }
}

/// An opened device with the sweep kernel loaded.
pub struct GpuDevice {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub func: CudaFunction,
    /// The device's name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability as major * 10 + minor (90 for an H100/H200).
    pub cc: u32,
    /// Where the kernel came from (a file, or NVRTC and the architecture).
    pub kernel_origin: String,
}

impl GpuDevice {
    /// Open device `ordinal` and load the kernel: the driver, the device, then the kernel source
    /// (a file, or NVRTC), each checked before cudarc is asked to use it.
    pub fn open(ordinal: usize, src: &KernelSource) -> Result<Self, GpuError> {
        let ctx = open_device(ordinal)?;
        let attr =
            |a: sys::CUdevice_attribute, what: &str| ctx.attribute(a).map_err(|e| GpuError::driver(what, e));
        use sys::CUdevice_attribute::{
            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR as MAJOR,
            CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR as MINOR,
        };
        let cc = (attr(MAJOR, "cuDeviceGetAttribute")? * 10 + attr(MINOR, "cuDeviceGetAttribute")?) as u32;
        let name = ctx.name().map_err(|e| GpuError::driver("cuDeviceGetName", e))?;
        let img = src.image(cc)?;
        let origin = img.origin.clone();
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_binary(img.bytes))
            .map_err(|e| GpuError::driver(&format!("cuModuleLoadData ({origin})"), e))?;
        let func = module.load_function(nvrtc::KERNEL_NAME).map_err(|e| {
            GpuError::driver(&format!("cuModuleGetFunction {} ({origin})", nvrtc::KERNEL_NAME), e)
        })?;
        let stream = ctx.default_stream();
        Ok(Self { ctx, stream, func, name, cc, kernel_origin: origin })
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(u64, u64), GpuError> {
        let (free, total) = self.ctx.mem_get_info().map_err(|e| GpuError::driver("cuMemGetInfo", e))?;
        Ok((free as u64, total as u64))
    }
}

// SAFETY: plain `#[repr(C)]` structs of integers, doubles and pointers (checked against the C++
// layout by lib.rs's test); the kernel reads them with the same layout.
unsafe impl DeviceRepr for AiqSweepArgs {}
unsafe impl DeviceRepr for AiqSnap {}
unsafe impl DeviceRepr for AiqParams {}
unsafe impl DeviceRepr for AiqResult {}

/// Launch and memory settings of [`GpuBackend`].
#[derive(Debug, Clone)]
pub struct GpuSettings {
    /// Share of free device memory left unused (driver, fragmentation).
    pub headroom: f64,
    /// At most this many combos per launch.
    pub max_batch: u32,
}

impl Default for GpuSettings {
    fn default() -> Self {
        Self { headroom: 0.10, max_batch: 1 << 20 }
    }
}

/// The decision core on a CUDA device. Each [`CoreBackend::run`] uploads its [`CoreInputs`]
/// once, then runs the requested combos in launches sized to the device's free memory (result
/// row + scratch per combo) and copies back only the result rows.
pub struct GpuBackend {
    dev: GpuDevice,
    label: String,
    settings: GpuSettings,
    /// Launches made, and combos run, since the backend was opened.
    pub launches: u64,
    pub combos: u64,
}

impl GpuBackend {
    pub fn new(dev: GpuDevice, settings: GpuSettings) -> Self {
        let label = format!("gpu ({}, {})", dev.name, dev.kernel_origin);
        Self { dev, label, settings, launches: 0, combos: 0 }
    }

    pub fn device(&self) -> &GpuDevice {
        &self.dev
    }

    fn run_gpu(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), GpuError> {
        let stream = Arc::clone(&self.dev.stream);
        let d = |what: &'static str| move |e: DriverError| GpuError::driver(what, e);
        // The shared inputs, once for this call. Empty arrays (no sub-bars, no funding) upload one
        // padding element: the driver refuses zero-byte allocations; the counts say 0.
        fn up<T: DeviceRepr + Copy + Default>(
            s: &Arc<CudaStream>,
            v: &[T],
        ) -> Result<CudaSlice<T>, DriverError> {
            if v.is_empty() {
                s.clone_htod(&[T::default()][..])
            } else {
                s.clone_htod(v)
            }
        }
        let times = up(&stream, &inputs.times).map_err(d("upload times"))?;
        let step_start = up(&stream, &inputs.step_start).map_err(d("upload step_start"))?;
        let step_symbol = up(&stream, &inputs.step_symbol).map_err(d("upload step_symbol"))?;
        let fund_start = up(&stream, &inputs.fund_start).map_err(d("upload fund_start"))?;
        let fund_symbol = up(&stream, &inputs.fund_symbol).map_err(d("upload fund_symbol"))?;
        let fund_time = up(&stream, &inputs.fund_time).map_err(d("upload fund_time"))?;
        let fund_rate = up(&stream, &inputs.fund_rate).map_err(d("upload fund_rate"))?;
        let sub_times = up(&stream, &inputs.sub_times).map_err(d("upload sub_times"))?;
        let sub_start = up(&stream, &inputs.sub_start).map_err(d("upload sub_start"))?;
        let sub_symbol = up(&stream, &inputs.sub_symbol).map_err(d("upload sub_symbol"))?;
        let sub_entry_px = up(&stream, &inputs.sub_entry_px).map_err(d("upload sub_entry_px"))?;
        let sub_exit_px = up(&stream, &inputs.sub_exit_px).map_err(d("upload sub_exit_px"))?;
        let name_order = up(&stream, &inputs.name_order).map_err(d("upload name_order"))?;
        let snaps = up(&stream, &inputs.snaps).map_err(d("upload snaps"))?;
        let combo_snap_off = up(&stream, &inputs.combo_snap_off).map_err(d("upload combo_snap_off"))?;
        let params = up(&stream, &inputs.params).map_err(d("upload params"))?;
        let combo_params = up(&stream, &inputs.combo_params).map_err(d("upload combo_params"))?;

        let stride = inputs.scratch_stride();
        let per_combo = std::mem::size_of::<AiqResult>() as u64 + stride;
        let (free, _) = self.dev.memory()?;
        let batch =
            batch_size(out.len() as u64, per_combo, free, self.settings.headroom, self.settings.max_batch)?;
        // SAFETY: every result row and scratch byte a launch reads is written by the kernel first
        // (aiq_run_combo zeroes its row and its scratch before use).
        let results = unsafe { stream.alloc::<AiqResult>(batch as usize) }.map_err(d("alloc results"))?;
        let scratch = unsafe { stream.alloc::<u8>((u64::from(batch) * stride) as usize) }
            .map_err(d("alloc scratch"))?;

        let mut args = inputs.args_template();
        {
            let ptr = |p: u64| p as usize;
            let (p, _g) = times.device_ptr(&stream);
            args.times = ptr(p) as *const i64;
            let (p, _g) = step_start.device_ptr(&stream);
            args.step_start = ptr(p) as *const u32;
            let (p, _g) = step_symbol.device_ptr(&stream);
            args.step_symbol = ptr(p) as *const u32;
            let (p, _g) = fund_start.device_ptr(&stream);
            args.fund_start = ptr(p) as *const u32;
            let (p, _g) = fund_symbol.device_ptr(&stream);
            args.fund_symbol = ptr(p) as *const u32;
            let (p, _g) = fund_time.device_ptr(&stream);
            args.fund_time = ptr(p) as *const i64;
            let (p, _g) = fund_rate.device_ptr(&stream);
            args.fund_rate = ptr(p) as *const f64;
            let (p, _g) = sub_times.device_ptr(&stream);
            args.sub_times = ptr(p) as *const i64;
            let (p, _g) = sub_start.device_ptr(&stream);
            args.sub_start = ptr(p) as *const u32;
            let (p, _g) = sub_symbol.device_ptr(&stream);
            args.sub_symbol = ptr(p) as *const u32;
            let (p, _g) = sub_entry_px.device_ptr(&stream);
            args.sub_entry_px = ptr(p) as *const f64;
            let (p, _g) = sub_exit_px.device_ptr(&stream);
            args.sub_exit_px = ptr(p) as *const f64;
            let (p, _g) = name_order.device_ptr(&stream);
            args.name_order = ptr(p) as *const u32;
            let (p, _g) = snaps.device_ptr(&stream);
            args.snaps = ptr(p) as *const AiqSnap;
            let (p, _g) = combo_snap_off.device_ptr(&stream);
            args.combo_snap_off = ptr(p) as *const u64;
            let (p, _g) = params.device_ptr(&stream);
            args.params = ptr(p) as *const AiqParams;
            let (p, _g) = combo_params.device_ptr(&stream);
            args.combo_params = ptr(p) as *const u32;
            let (p, _g) = results.device_ptr(&stream);
            args.results = ptr(p) as *mut AiqResult;
            let (p, _g) = scratch.device_ptr(&stream);
            args.scratch = ptr(p) as *mut u8;
        }
        // The event log is host-only.
        args.events = std::ptr::null_mut();
        args.event_counts = std::ptr::null_mut();
        args.events_cap = 0;

        for (start, count) in batches(first, out.len() as u32, batch) {
            args.result_base = start;
            let cfg = LaunchConfig {
                grid_dim: (grid_blocks(count), 1, 1),
                block_dim: (BLOCK_THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut launch = stream.launch_builder(&self.dev.func);
            launch.arg(&args).arg(&start).arg(&count);
            // SAFETY: `args` holds device pointers to buffers that live until the end of this
            // function, sized for its counts and for `count` combos from `result_base`; the kernel's
            // signature is (AiqSweepArgs, uint32_t, uint32_t).
            unsafe { launch.launch(cfg) }.map_err(d("kernel launch"))?;
            let lo = (start - first) as usize;
            let view = results.slice(0..count as usize);
            stream.memcpy_dtoh(&view, &mut out[lo..lo + count as usize]).map_err(d("copy results"))?;
            stream.synchronize().map_err(d("kernel run"))?;
            self.launches += 1;
            self.combos += u64::from(count);
        }
        // Keep the uploads alive until the last launch has finished (synchronised above).
        drop((times, step_start, step_symbol, fund_start, fund_symbol, fund_time, fund_rate));
        drop((sub_times, sub_start, sub_symbol, sub_entry_px, sub_exit_px, name_order));
        drop((snaps, combo_snap_off, params, combo_params, scratch));
        drop(results);
        Ok(())
    }
}

impl CoreBackend for GpuBackend {
    fn name(&self) -> &str {
        &self.label
    }

    fn run(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), CoreError> {
        inputs.validate()?;
        let n = out.len() as u64;
        if u64::from(first) + n > u64::from(inputs.n_combos()) {
            return Err(CoreError::Invalid(format!(
                "combos {first}..{} requested of {}",
                u64::from(first) + n,
                inputs.n_combos()
            )));
        }
        if out.is_empty() {
            return Ok(());
        }
        self.run_gpu(inputs, first, out).map_err(|e| CoreError::Backend(e.to_string()))
    }
}

/// How many combos one launch runs.
///
/// `free_bytes`: the device's free memory after the shared inputs are uploaded;
/// `per_combo_bytes`: what one combo needs on the device (its result row and its scratch);
/// a `headroom` fraction of free memory is left for the driver. At most `max_batch` combos
/// (a launch of fewer combos keeps the progress and the output flowing).
pub fn batch_size(
    combos: u64,
    per_combo_bytes: u64,
    free_bytes: u64,
    headroom: f64,
    max_batch: u32,
) -> Result<u32, GpuError> {
    if combos == 0 {
        return Ok(0);
    }
    let usable = (free_bytes as f64 * (1.0 - headroom.clamp(0.0, 0.99))) as u64;
    let fit = usable / per_combo_bytes.max(1);
    if fit == 0 {
        return Err(GpuError::Memory(format!(
            "one combo needs {per_combo_bytes} bytes on the device, {free_bytes} bytes are free after the inputs"
        )));
    }
    Ok(fit.min(combos).min(u64::from(max_batch.max(1))) as u32)
}

/// The launches that cover combos `first .. first + n` in batches of `batch`: (first, count).
pub fn batches(first: u32, n: u32, batch: u32) -> impl Iterator<Item = (u32, u32)> {
    let batch = batch.max(1);
    let end = first + n;
    (first..end).step_by(batch as usize).map(move |s| (s, batch.min(end - s)))
}

/// Threads per block: one combo per thread; 128 keeps occupancy up for a register-heavy kernel.
pub const BLOCK_THREADS: u32 = 128;

/// Blocks for `n` combos.
pub fn grid_blocks(n: u32) -> u32 {
    n.div_ceil(BLOCK_THREADS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_free_memory_and_cover_every_combo_once() {
        // 1000 combos of 1 MiB each, 100 MiB free, 10% headroom: 90 per launch.
        assert_eq!(batch_size(1000, 1 << 20, 100 << 20, 0.1, u32::MAX).unwrap(), 90);
        // Capped by the grid and by max_batch.
        assert_eq!(batch_size(7, 1, 1 << 30, 0.1, 1 << 20).unwrap(), 7);
        assert_eq!(batch_size(1 << 40, 1, 1 << 40, 0.0, 65_536).unwrap(), 65_536);
        assert_eq!(batch_size(0, 1, 0, 0.1, 10).unwrap(), 0);
        // Not even one combo fits: an error naming both sizes.
        let e = batch_size(10, 1 << 30, 1 << 20, 0.1, 10).unwrap_err().to_string();
        assert!(e.contains("1073741824") && e.contains("1048576") && e.starts_with("device memory"), "{e}");
        let v: Vec<(u32, u32)> = batches(5, 10, 4).collect();
        assert_eq!(v, vec![(5, 4), (9, 4), (13, 2)]);
        assert_eq!(batches(0, 0, 4).count(), 0);
        let covered: u32 = batches(3, 1001, 90).map(|(_, c)| c).sum();
        assert_eq!(covered, 1001);
        assert_eq!(grid_blocks(1), 1);
        assert_eq!(grid_blocks(BLOCK_THREADS + 1), 2);
    }

    #[test]
    fn without_a_driver_opening_a_device_is_one_line_naming_libcuda() {
        if driver_present() {
            // A machine with the driver: the device may or may not be there, but no panic.
            match open_device(0) {
                Ok(_) | Err(GpuError::NoDevice(_)) | Err(GpuError::Driver { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
            return;
        }
        let e = open_device(0).unwrap_err();
        assert_eq!(e, GpuError::NoDriver);
        let msg = e.to_string();
        assert!(msg.contains("libcuda") && !msg.contains('\n'), "{msg}");
    }

    #[test]
    fn errors_are_one_line() {
        let errs = [
            GpuError::NoNvrtc,
            GpuError::Compile { target: "sm_90".into(), log: "a.cu(1): error\nb\n".into() },
            GpuError::NoDevice("x".into()),
        ];
        for e in errs {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        assert!(GpuError::NoNvrtc.to_string().contains("nvidia-cuda-nvrtc-cu12==12.9.86"));
    }
}
