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
    sys, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg,
};

use crate::abi::{AiqParams, AiqResult, AiqSnap, AiqSweepArgs};
use crate::error::GpuError;
use crate::nvrtc::{self, KernelImage, Target};
use crate::{CoreBackend, CoreError, CoreInputs};

/// Run `f`, turning a panic (cudarc's answer to a missing library or symbol) into an error, with
/// the default panic message suppressed so the operator sees one line.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, GpuError>) -> Result<T, GpuError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    r.unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(GpuError::Driver { what: what.to_string(), reason: msg.replace('\n', " ") })
    })
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
    /// The buffers of the current run ([`LaunchTarget`]).
    bufs: Vec<CudaSlice<u8>>,
}

impl GpuDevice {
    /// Open device `ordinal` and load the kernel: the driver, the device, then the kernel source
    /// (a file, or NVRTC), each checked before cudarc is asked to use it.
    pub fn open(ordinal: usize, src: &KernelSource) -> Result<Self, GpuError> {
        // cudarc panics on a symbol an old driver lacks: that too becomes one line.
        no_panic("opening the device", || Self::open_inner(ordinal, src))
    }

    fn open_inner(ordinal: usize, src: &KernelSource) -> Result<Self, GpuError> {
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
        Ok(Self { ctx, stream, func, name, cc, kernel_origin: origin, bufs: Vec::new() })
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

/// Launch and memory settings of a [`BatchedBackend`].
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Share of free memory left unused (driver, fragmentation).
    pub headroom: f64,
    /// At most this many combos per launch.
    pub max_batch: u32,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self { headroom: 0.10, max_batch: 1 << 20 }
    }
}

/// A buffer of a [`LaunchTarget`] (index into its buffers for the current run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufId(usize);

/// Where the core's launches run: the memory they read and write, and the launch itself. The GPU
/// is one ([`GpuDevice`]); [`HostTarget`] is the same thing in host memory with the host build of
/// the core, so the batching, the args with target addresses and the result copies that the GPU
/// runs are exercised on machines without one.
pub trait LaunchTarget {
    fn label(&self) -> String;
    /// Bytes free for results and scratch now.
    fn free_bytes(&self) -> Result<u64, GpuError>;
    /// Copy `bytes` in (8-byte aligned on the target; at least 8 bytes are allocated).
    fn upload(&mut self, bytes: &[u8]) -> Result<BufId, GpuError>;
    /// Uninitialised space of `bytes` (at least 8).
    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError>;
    /// The target address of a buffer (what the core's pointers hold).
    fn addr(&self, b: BufId) -> u64;
    /// Run combos `first..first + n` of `args`.
    ///
    /// # Safety
    /// Every pointer in `args` must be a target address of a live buffer, sized for the counts
    /// in `args` and for combos `first..first + n` from `args.result_base`.
    unsafe fn launch(&mut self, args: &AiqSweepArgs, first: u32, n: u32) -> Result<(), GpuError>;
    /// Copy the first `out.len()` bytes of buffer `b` out (after the launches before it finished).
    fn download(&mut self, b: BufId, out: &mut [u8]) -> Result<(), GpuError>;
    /// Free every buffer of this run.
    fn release(&mut self);
}

/// The bytes of a slice of plain `#[repr(C)]` values (integers, doubles, the ABI structs).
fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: T is Copy plain data without padding-sensitive invariants; any byte view is valid.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

fn bytes_of_mut(v: &mut [AiqResult]) -> &mut [u8] {
    // SAFETY: AiqResult is plain data (integers and doubles); every byte pattern is a valid value.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The decision core on a [`LaunchTarget`]. Each [`CoreBackend::run`] uploads its
/// [`CoreInputs`] once, then runs the requested combos in launches sized to the target's free
/// memory (result row + scratch per combo) and copies back only the result rows.
pub struct BatchedBackend<T: LaunchTarget> {
    target: T,
    label: String,
    settings: BatchSettings,
    /// Launches made, and combos run, since the backend was made.
    pub launches: u64,
    pub combos: u64,
    /// Seconds spent uploading inputs, and in launches (run and result copy), since then.
    pub upload_s: f64,
    pub launch_s: f64,
}

/// The GPU backend.
pub type GpuBackend = BatchedBackend<GpuDevice>;

impl<T: LaunchTarget> BatchedBackend<T> {
    pub fn new(target: T, settings: BatchSettings) -> Self {
        let label = target.label();
        Self { target, label, settings, launches: 0, combos: 0, upload_s: 0.0, launch_s: 0.0 }
    }

    pub fn target(&self) -> &T {
        &self.target
    }

    /// One line: launches, combos, upload and launch time (where a sweep's time went).
    pub fn stats(&self) -> String {
        format!(
            "{}: {} launches, {} combos; upload {:.2} s, launches {:.2} s",
            self.label, self.launches, self.combos, self.upload_s, self.launch_s
        )
    }

    fn run_batched(
        &mut self,
        inputs: &CoreInputs,
        first: u32,
        out: &mut [AiqResult],
    ) -> Result<(), GpuError> {
        let r = self.run_inner(inputs, first, out);
        self.target.release();
        r
    }

    fn run_inner(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), GpuError> {
        let t = &mut self.target;
        let t0 = std::time::Instant::now();
        // The shared inputs, once for this call.
        let times = t.upload(bytes_of(&inputs.times))?;
        let step_start = t.upload(bytes_of(&inputs.step_start))?;
        let step_symbol = t.upload(bytes_of(&inputs.step_symbol))?;
        let fund_start = t.upload(bytes_of(&inputs.fund_start))?;
        let fund_symbol = t.upload(bytes_of(&inputs.fund_symbol))?;
        let fund_time = t.upload(bytes_of(&inputs.fund_time))?;
        let fund_rate = t.upload(bytes_of(&inputs.fund_rate))?;
        let sub_times = t.upload(bytes_of(&inputs.sub_times))?;
        let sub_start = t.upload(bytes_of(&inputs.sub_start))?;
        let sub_symbol = t.upload(bytes_of(&inputs.sub_symbol))?;
        let sub_entry_px = t.upload(bytes_of(&inputs.sub_entry_px))?;
        let sub_exit_px = t.upload(bytes_of(&inputs.sub_exit_px))?;
        let name_order = t.upload(bytes_of(&inputs.name_order))?;
        let snaps = t.upload(bytes_of(&inputs.snaps))?;
        let combo_snap_off = t.upload(bytes_of(&inputs.combo_snap_off))?;
        let params = t.upload(bytes_of(&inputs.params))?;
        let combo_params = t.upload(bytes_of(&inputs.combo_params))?;

        self.upload_s += t0.elapsed().as_secs_f64();
        let stride = inputs.scratch_stride();
        let row = std::mem::size_of::<AiqResult>() as u64;
        let free = t.free_bytes()?;
        let batch = batch_size(
            out.len() as u64,
            row + stride,
            free,
            self.settings.headroom,
            self.settings.max_batch,
        )?;
        let results = t.alloc((u64::from(batch) * row) as usize)?;
        let scratch = t.alloc((u64::from(batch) * stride) as usize)?;

        let mut args = inputs.args_template();
        args.times = t.addr(times) as usize as *const i64;
        args.step_start = t.addr(step_start) as usize as *const u32;
        args.step_symbol = t.addr(step_symbol) as usize as *const u32;
        args.fund_start = t.addr(fund_start) as usize as *const u32;
        args.fund_symbol = t.addr(fund_symbol) as usize as *const u32;
        args.fund_time = t.addr(fund_time) as usize as *const i64;
        args.fund_rate = t.addr(fund_rate) as usize as *const f64;
        args.sub_times = t.addr(sub_times) as usize as *const i64;
        args.sub_start = t.addr(sub_start) as usize as *const u32;
        args.sub_symbol = t.addr(sub_symbol) as usize as *const u32;
        args.sub_entry_px = t.addr(sub_entry_px) as usize as *const f64;
        args.sub_exit_px = t.addr(sub_exit_px) as usize as *const f64;
        args.name_order = t.addr(name_order) as usize as *const u32;
        args.snaps = t.addr(snaps) as usize as *const AiqSnap;
        args.combo_snap_off = t.addr(combo_snap_off) as usize as *const u64;
        args.params = t.addr(params) as usize as *const AiqParams;
        args.combo_params = t.addr(combo_params) as usize as *const u32;
        args.results = t.addr(results) as usize as *mut AiqResult;
        args.scratch = t.addr(scratch) as usize as *mut u8;
        // The event log is host-only (the differential tests read it through HostBackend).
        args.events = std::ptr::null_mut();
        args.event_counts = std::ptr::null_mut();
        args.events_cap = 0;

        let t1 = std::time::Instant::now();
        for (start, count) in batches(first, out.len() as u32, batch) {
            args.result_base = start;
            // SAFETY: every pointer in `args` is a live buffer of this run sized from `inputs`
            // (validated by the caller) and for `batch >= count` combos from `result_base`.
            unsafe { t.launch(&args, start, count)? };
            let lo = (start - first) as usize;
            t.download(results, bytes_of_mut(&mut out[lo..lo + count as usize]))?;
            self.launches += 1;
            self.combos += u64::from(count);
        }
        self.launch_s += t1.elapsed().as_secs_f64();
        Ok(())
    }
}

impl<T: LaunchTarget> CoreBackend for BatchedBackend<T> {
    fn name(&self) -> &str {
        &self.label
    }

    fn run(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), CoreError> {
        inputs.validate_range(first, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        no_panic("running the kernel", || self.run_batched(inputs, first, out))
            .map_err(|e| CoreError::Backend(e.to_string()))
    }
}

impl LaunchTarget for GpuDevice {
    fn label(&self) -> String {
        format!("gpu ({}, {})", self.name, self.kernel_origin)
    }

    fn free_bytes(&self) -> Result<u64, GpuError> {
        Ok(self.memory()?.0)
    }

    fn upload(&mut self, bytes: &[u8]) -> Result<BufId, GpuError> {
        // The driver refuses zero-byte allocations: an empty array (no sub-bars) gets 8 bytes.
        let pad = [0u8; 8];
        let src = if bytes.is_empty() { &pad[..] } else { bytes };
        let b = self.stream.clone_htod(src).map_err(|e| GpuError::driver("upload (cuMemcpyHtoD)", e))?;
        self.bufs.push(b);
        Ok(BufId(self.bufs.len() - 1))
    }

    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError> {
        // SAFETY: the kernel writes every result row and scratch byte before it reads them
        // (aiq_run_combo zeroes its row and its scratch first).
        let b = unsafe { self.stream.alloc::<u8>(bytes.max(8)) }
            .map_err(|e| GpuError::driver("cuMemAlloc", e))?;
        self.bufs.push(b);
        Ok(BufId(self.bufs.len() - 1))
    }

    fn addr(&self, b: BufId) -> u64 {
        let (p, _sync) = self.bufs[b.0].device_ptr(&self.stream);
        p
    }

    unsafe fn launch(&mut self, args: &AiqSweepArgs, first: u32, n: u32) -> Result<(), GpuError> {
        let cfg = LaunchConfig {
            grid_dim: (grid_blocks(n), 1, 1),
            block_dim: (BLOCK_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut l = self.stream.launch_builder(&self.func);
        l.arg(args).arg(&first).arg(&n);
        // SAFETY: the kernel's signature is (AiqSweepArgs, uint32_t, uint32_t); the caller
        // guarantees the pointers in `args`.
        unsafe { l.launch(cfg) }.map_err(|e| GpuError::driver("kernel launch", e))?;
        Ok(())
    }

    fn download(&mut self, b: BufId, out: &mut [u8]) -> Result<(), GpuError> {
        let view = self.bufs[b.0].slice(0..out.len());
        self.stream
            .memcpy_dtoh(&view, out)
            .map_err(|e| GpuError::driver("copy results (cuMemcpyDtoH)", e))?;
        // A failed launch surfaces here at the latest.
        self.stream.synchronize().map_err(|e| GpuError::driver("kernel run", e))
    }

    fn release(&mut self) {
        let _ = self.stream.synchronize();
        self.bufs.clear();
    }
}

/// The host build of the core behind the same [`LaunchTarget`] interface: buffers in host memory
/// (addresses are host pointers), a launch split across `threads` (each runs its own combos, so
/// results and scratch, indexed by combo, are disjoint), a fixed memory budget.
pub struct HostTarget {
    threads: usize,
    budget_bytes: u64,
    bufs: Vec<Vec<u64>>,
}

impl HostTarget {
    pub fn new(threads: usize, budget_bytes: u64) -> Self {
        Self { threads: threads.max(1), budget_bytes, bufs: Vec::new() }
    }
}

impl LaunchTarget for HostTarget {
    fn label(&self) -> String {
        "host-cuda".to_string()
    }

    fn free_bytes(&self) -> Result<u64, GpuError> {
        Ok(self.budget_bytes)
    }

    fn upload(&mut self, bytes: &[u8]) -> Result<BufId, GpuError> {
        let id = self.alloc(bytes.len())?;
        let dst = &mut self.bufs[id.0];
        // SAFETY: `dst` holds at least `bytes.len()` bytes (alloc rounds up to whole u64s).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_mut_ptr().cast::<u8>(), bytes.len()) };
        Ok(id)
    }

    fn alloc(&mut self, bytes: usize) -> Result<BufId, GpuError> {
        self.bufs.push(vec![0u64; bytes.div_ceil(8).max(1)]);
        Ok(BufId(self.bufs.len() - 1))
    }

    fn addr(&self, b: BufId) -> u64 {
        self.bufs[b.0].as_ptr() as usize as u64
    }

    unsafe fn launch(&mut self, args: &AiqSweepArgs, first: u32, n: u32) -> Result<(), GpuError> {
        let per = n.div_ceil(self.threads as u32).max(1);
        /// The args cross to worker threads: each only touches its own combos' rows and scratch.
        struct Shared(*const AiqSweepArgs);
        // SAFETY: see above; the buffers outlive the scope.
        unsafe impl Sync for Shared {}
        let shared = Shared(args);
        std::thread::scope(|s| {
            for start in (first..first + n).step_by(per as usize) {
                let count = per.min(first + n - start);
                let a = &shared;
                s.spawn(move || {
                    // SAFETY: the caller's guarantee, for a disjoint range of combos.
                    unsafe { crate::host::ffi::aiq_host_run(a.0, start, count) }
                });
            }
        });
        Ok(())
    }

    fn download(&mut self, b: BufId, out: &mut [u8]) -> Result<(), GpuError> {
        out.copy_from_slice(&bytes_of(&self.bufs[b.0])[..out.len()]);
        Ok(())
    }

    fn release(&mut self) {
        self.bufs.clear();
    }
}

/// The `host-cuda` backend: the host build through the GPU's batching.
pub type HostBatchedBackend = BatchedBackend<HostTarget>;

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
    fn a_panic_in_the_driver_layer_is_one_line() {
        let e = no_panic::<()>("opening the device", || panic!("Unable to find cuCtxCreate_v4\nin libcuda"))
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("CUDA driver error in opening the device: Unable to find cuCtxCreate_v4"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        assert_eq!(no_panic("x", || Ok(3)).unwrap(), 3);
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
