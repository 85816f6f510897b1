//! The host backend: the C++ core compiled by build.rs, run on CPU threads.

use crate::abi::{AiqEvent, AiqResult, AiqSweepArgs};
use crate::{CoreBackend, CoreError, CoreInputs};

pub(crate) mod ffi {
    use crate::abi::AiqSweepArgs;
    use std::ffi::c_char;
    extern "C" {
        pub fn aiq_host_core_abi() -> u32;
        pub fn aiq_host_scratch_bytes(n_symbols: u32) -> u64;
        pub fn aiq_host_run(a: *const AiqSweepArgs, first: u32, n: u32);
        pub fn aiq_host_layout(which: u32, i: u32, name: *mut *const c_char, offset: *mut u64) -> u64;
        // Test hooks (the float helpers' Rust semantics).
        #[cfg(test)]
        pub fn aiq_host_math(op: u32, a: f64, b: f64, c: f64) -> f64;
        #[cfg(test)]
        pub fn aiq_host_f64_to_i64(x: f64) -> i64;
        #[cfg(test)]
        pub fn aiq_host_total_key(x: f64) -> i64;
    }
}

/// ABI version of the host-compiled core.
pub fn host_core_abi() -> u32 {
    // SAFETY: a pure function with no arguments.
    unsafe { ffi::aiq_host_core_abi() }
}

/// Scratch bytes one combo needs for `n_symbols` symbols.
pub fn scratch_bytes(n_symbols: u32) -> u64 {
    // SAFETY: pure arithmetic on sizes.
    unsafe { ffi::aiq_host_scratch_bytes(n_symbols) }
}

/// The C++ compiler's layout of struct `which` (0 params, 1 snap, 2 result, 3 event, 4 args):
/// its size and `(field name, offset)` in declaration order.
pub fn host_layout(which: u32) -> (u64, Vec<(String, u64)>) {
    let mut fields = Vec::new();
    let mut size = 0;
    for i in 0.. {
        let mut name: *const std::ffi::c_char = std::ptr::null();
        let mut off = 0u64;
        // SAFETY: the callee writes a static C string (or null) and an integer.
        size = unsafe { ffi::aiq_host_layout(which, i, &mut name, &mut off) };
        if name.is_null() {
            break;
        }
        // SAFETY: `name` points at a NUL-terminated literal in the host object.
        let n = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned();
        fields.push((n, off));
    }
    (size, fields)
}

/// Run `args` for combos `first..first + n` on this thread.
///
/// # Safety
/// Every pointer in `args` must be valid for the counts it carries and for combos
/// `first..first + n` (results, scratch and log indexed from `args.result_base`), and no other
/// thread may write the same results, scratch or log entries.
unsafe fn run_raw(args: &AiqSweepArgs, first: u32, n: u32) {
    ffi::aiq_host_run(args, first, n);
}

/// One combo on this thread with its event log (fills and entry blocks, at most `cap`): the
/// differential tests' view. Returns the result, the events kept and the number written.
pub fn run_logged(
    inputs: &CoreInputs,
    combo: u32,
    cap: u32,
) -> Result<(AiqResult, Vec<AiqEvent>, u32), CoreError> {
    inputs.validate()?;
    if combo >= inputs.n_combos() {
        return Err(CoreError::Invalid(format!("combo {combo} of {}", inputs.n_combos())));
    }
    let mut res = [AiqResult::default()];
    let mut scratch = vec![0u8; inputs.scratch_stride() as usize];
    let mut events = vec![AiqEvent::default(); cap as usize];
    let mut counts = [0u32];
    let args = inputs.host_args(combo, &mut res, &mut scratch, Some((&mut events, &mut counts, cap)));
    // SAFETY: `args` points into `inputs` (validated) and the buffers above, sized for one combo.
    unsafe { run_raw(&args, combo, 1) };
    let written = counts[0];
    events.truncate(written.min(cap) as usize);
    Ok((res[0], events, written))
}

/// The C++ core on CPU threads (what CI exercises; the GPU backend runs the same source).
#[derive(Debug, Clone)]
pub struct HostBackend {
    threads: usize,
}

impl HostBackend {
    /// `threads` worker threads (at least 1).
    pub fn new(threads: usize) -> Self {
        Self { threads: threads.max(1) }
    }
}

impl CoreBackend for HostBackend {
    fn name(&self) -> &str {
        "host-cuda"
    }

    fn run(&mut self, inputs: &CoreInputs, first: u32, out: &mut [AiqResult]) -> Result<(), CoreError> {
        inputs.validate_range(first, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        let stride = inputs.scratch_stride() as usize;
        let per = out.len().div_ceil(self.threads);
        std::thread::scope(|scope| {
            for (i, chunk) in out.chunks_mut(per).enumerate() {
                let base = first + (i * per) as u32;
                scope.spawn(move || {
                    let mut scratch = vec![0u8; stride];
                    // One combo at a time: the scratch of one combo is reused.
                    for (j, slot) in chunk.iter_mut().enumerate() {
                        let combo = base + j as u32;
                        let args = inputs.host_args(combo, std::slice::from_mut(slot), &mut scratch, None);
                        // SAFETY: args point into validated `inputs`, this thread's own result slot
                        // and scratch, for exactly combo `combo`.
                        unsafe { run_raw(&args, combo, 1) };
                    }
                });
            }
        });
        Ok(())
    }
}
