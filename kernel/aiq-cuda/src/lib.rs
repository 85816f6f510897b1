//! The sweep's decision core in C++, compiled for the host (here) and for the GPU (NVRTC).
#![allow(unsafe_code)] // FFI to the host-compiled core and, later, the CUDA driver.

pub mod gpu;
pub mod nvrtc;

mod ffi {
    extern "C" {
        pub fn aiq_host_core_abi() -> u32;
    }
}

/// ABI version of the host-compiled core.
pub fn host_core_abi() -> u32 {
    // SAFETY: a pure function with no arguments.
    unsafe { ffi::aiq_host_core_abi() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_core_links() {
        assert_eq!(super::host_core_abi(), 0);
    }
}
