//! [`CoreInputs`]: the host-owned arrays every backend reads, and the host [`AiqSweepArgs`]
//! pointing at them.

use crate::abi::{AiqEvent, AiqParams, AiqResult, AiqSnap, AiqSweepArgs, CORE_ABI};
use crate::CoreError;

/// Everything [`AiqSweepArgs`] points at except results, scratch and the event log: the
/// timeline, the snapshot series, the distinct configs and, per combo, which of them it uses.
/// Combos are numbered `0..n_combos()` here (the caller maps them to grid indices).
#[derive(Debug, Clone, Default)]
pub struct CoreInputs {
    /// Timeline symbols (index = symbol id everywhere below).
    pub symbols: Vec<String>,
    pub interval_ms: i64,
    pub initial_balance: f64,
    /// Bar open times, ascending; step `k` holds `step_symbol[step_start[k]..step_start[k + 1]]`.
    pub times: Vec<i64>,
    pub step_start: Vec<u32>,
    pub step_symbol: Vec<u32>,
    /// Funding events due at step `k`: `fund_start[k]..fund_start[k + 1]`.
    pub fund_start: Vec<u32>,
    pub fund_symbol: Vec<u32>,
    pub fund_time: Vec<i64>,
    pub fund_rate: Vec<f64>,
    /// Sub-bar ticks (empty without sub-bars); NaN prices = no such sub-bar for that symbol.
    pub sub_times: Vec<i64>,
    pub sub_start: Vec<u32>,
    pub sub_symbol: Vec<u32>,
    pub sub_entry_px: Vec<f64>,
    pub sub_exit_px: Vec<f64>,
    /// Symbol ids sorted by name (byte order): the kernel's BTreeMap order.
    pub name_order: Vec<u32>,
    /// Every (symbol, indicator config) series of snapshots, concatenated.
    pub snaps: Vec<AiqSnap>,
    /// `[combo * n_symbols + s]`: start in `snaps` of symbol `s`'s series for that combo.
    pub combo_snap_off: Vec<u64>,
    /// Distinct configs.
    pub params: Vec<AiqParams>,
    /// `[combo * (n_symbols + 1) + slot]`: slot 0 the combo's base config, `1 + s` symbol `s`'s.
    pub combo_params: Vec<u32>,
}

impl CoreInputs {
    pub fn n_symbols(&self) -> u32 {
        self.symbols.len() as u32
    }

    pub fn n_combos(&self) -> u32 {
        (self.combo_params.len() / (self.symbols.len() + 1)) as u32
    }

    /// Index of the symbol named "BTC" (the kernel's BTC alignment and regime gate read it).
    pub fn btc_symbol(&self) -> Option<u32> {
        self.symbols.iter().position(|s| s == "BTC").map(|i| i as u32)
    }

    /// Bytes of scratch one combo needs.
    pub fn scratch_stride(&self) -> u64 {
        crate::host::scratch_bytes(self.n_symbols())
    }

    /// Whether the timeline has sub-bar ticks.
    pub fn has_sub_bars(&self) -> bool {
        !self.sub_times.is_empty()
    }

    /// Check array lengths and indices (a bad input would read out of bounds in the core).
    /// [`CoreInputs::validate`], and combos `first..first + n` exist: what every backend checks
    /// before it runs a batch.
    pub fn validate_range(&self, first: u32, n: usize) -> Result<(), CoreError> {
        self.validate()?;
        let end = u64::from(first) + n as u64;
        if end > u64::from(self.n_combos()) {
            return Err(CoreError::Invalid(format!(
                "combos {first}..{end} requested of {}",
                self.n_combos()
            )));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::Invalid(m));
        let (ns, nt) = (self.symbols.len(), self.times.len());
        if ns == 0 || nt == 0 {
            return bad("no symbols or no bars".into());
        }
        if self.step_start.len() != nt + 1 || self.fund_start.len() != nt + 1 {
            return bad("step_start / fund_start must have n_times + 1 entries".into());
        }
        if *self.step_start.last().unwrap_or(&0) as usize != self.step_symbol.len()
            || *self.fund_start.last().unwrap_or(&0) as usize != self.fund_symbol.len()
        {
            return bad("step_start / fund_start do not end at their item counts".into());
        }
        let nf = self.fund_symbol.len();
        if self.fund_time.len() != nf || self.fund_rate.len() != nf {
            return bad("funding arrays differ in length".into());
        }
        let ni = self.sub_symbol.len();
        if self.sub_entry_px.len() != ni
            || self.sub_exit_px.len() != ni
            || (!self.sub_times.is_empty() && self.sub_start.len() != self.sub_times.len() + 1)
        {
            return bad("sub-bar arrays differ in length".into());
        }
        if self.step_symbol.iter().chain(&self.fund_symbol).chain(&self.sub_symbol).any(|&s| s as usize >= ns)
        {
            return bad("a symbol index is out of range".into());
        }
        let mut order = self.name_order.clone();
        order.sort_unstable();
        if order != (0..ns as u32).collect::<Vec<_>>() {
            return bad("name_order is not a permutation of the symbols".into());
        }
        let nc = self.n_combos() as usize;
        if self.combo_params.len() != nc * (ns + 1) || self.combo_snap_off.len() != nc * ns {
            return bad("combo_params / combo_snap_off do not match the combo count".into());
        }
        if self.combo_params.iter().any(|&p| p as usize >= self.params.len()) {
            return bad("a combo names a config out of range".into());
        }
        let mut bars = vec![0u64; ns];
        for &s in &self.step_symbol {
            bars[s as usize] += 1;
        }
        for c in 0..nc {
            for (s, &n) in bars.iter().enumerate() {
                if self.combo_snap_off[c * ns + s] + n > self.snaps.len() as u64 {
                    return bad(format!("combo {c}: symbol {s}'s snapshot series runs past the end"));
                }
            }
        }
        Ok(())
    }

    /// Args with every count filled and every pointer null (a GPU backend fills device pointers).
    pub fn args_template(&self) -> AiqSweepArgs {
        AiqSweepArgs {
            abi: CORE_ABI,
            n_combos: self.n_combos(),
            n_symbols: self.n_symbols(),
            n_times: self.times.len() as u32,
            n_step_items: self.step_symbol.len() as u32,
            n_funding: self.fund_symbol.len() as u32,
            n_sub_ticks: self.sub_times.len() as u32,
            n_sub_items: self.sub_symbol.len() as u32,
            n_snaps_unused: u32::try_from(self.snaps.len()).unwrap_or(u32::MAX),
            btc_symbol: self.btc_symbol().unwrap_or(u32::MAX),
            events_cap: 0,
            result_base: 0,
            interval_ms: self.interval_ms,
            initial_balance: self.initial_balance,
            scratch_stride: self.scratch_stride(),
            times: std::ptr::null(),
            step_start: std::ptr::null(),
            step_symbol: std::ptr::null(),
            fund_start: std::ptr::null(),
            fund_symbol: std::ptr::null(),
            fund_time: std::ptr::null(),
            fund_rate: std::ptr::null(),
            sub_times: std::ptr::null(),
            sub_start: std::ptr::null(),
            sub_symbol: std::ptr::null(),
            sub_entry_px: std::ptr::null(),
            sub_exit_px: std::ptr::null(),
            name_order: std::ptr::null(),
            snaps: std::ptr::null(),
            combo_snap_off: std::ptr::null(),
            params: std::ptr::null(),
            combo_params: std::ptr::null(),
            results: std::ptr::null_mut(),
            scratch: std::ptr::null_mut(),
            events: std::ptr::null_mut(),
            event_counts: std::ptr::null_mut(),
        }
    }

    /// Host args for combos `result_base..result_base + results.len()`: `scratch` holds at
    /// least `results.len() * scratch_stride()` bytes; `log` is `(events, counts, cap)` with
    /// `events.len() >= results.len() * cap` and `counts.len() >= results.len()`.
    /// The args borrow every buffer: use them only while those live and are not otherwise touched.
    pub fn host_args(
        &self,
        result_base: u32,
        results: &mut [AiqResult],
        scratch: &mut [u8],
        log: Option<(&mut [AiqEvent], &mut [u32], u32)>,
    ) -> AiqSweepArgs {
        assert!(scratch.len() as u64 >= results.len() as u64 * self.scratch_stride(), "scratch too small");
        let mut a = self.args_template();
        a.result_base = result_base;
        a.times = self.times.as_ptr();
        a.step_start = self.step_start.as_ptr();
        a.step_symbol = self.step_symbol.as_ptr();
        a.fund_start = self.fund_start.as_ptr();
        a.fund_symbol = self.fund_symbol.as_ptr();
        a.fund_time = self.fund_time.as_ptr();
        a.fund_rate = self.fund_rate.as_ptr();
        a.sub_times = self.sub_times.as_ptr();
        a.sub_start = self.sub_start.as_ptr();
        a.sub_symbol = self.sub_symbol.as_ptr();
        a.sub_entry_px = self.sub_entry_px.as_ptr();
        a.sub_exit_px = self.sub_exit_px.as_ptr();
        a.name_order = self.name_order.as_ptr();
        a.snaps = self.snaps.as_ptr();
        a.combo_snap_off = self.combo_snap_off.as_ptr();
        a.params = self.params.as_ptr();
        a.combo_params = self.combo_params.as_ptr();
        a.results = results.as_mut_ptr();
        a.scratch = scratch.as_mut_ptr();
        if let Some((events, counts, cap)) = log {
            assert!(events.len() as u64 >= results.len() as u64 * u64::from(cap), "event log too small");
            assert!(counts.len() >= results.len(), "event counts too small");
            a.events = events.as_mut_ptr();
            a.event_counts = counts.as_mut_ptr();
            a.events_cap = cap;
        }
        a
    }
}
