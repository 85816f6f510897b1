//! `ai-quant-bt`: replay, sweep and dump-indicators on the shared decision kernel.

use std::path::PathBuf;
use std::process::ExitCode;

use aiq_backtest::config::{canonical_json, ConfigFile};
use aiq_backtest::core_sweep::run_core_sweep_chunked;
use aiq_backtest::prepare::{prepare, DataOpts};
use aiq_backtest::report::{self, ReportMeta};
use aiq_backtest::sim::{make_kernel, run, run_pipelined, Record};
use aiq_backtest::sweep::{check_combos, run_sweep, verify, Grid, SweepOpts, SweepSpec};
use aiq_backtest::{dump, BtError};
use clap::{Args, Parser, Subcommand};

mod html_report;

#[derive(Parser)]
#[command(name = "ai-quant-bt", version, about = "ai-quant CPU backtester on the shared decision kernel")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay one config over history; write a report, trades and an equity curve.
    Replay(ReplayArgs),
    /// Run a grid of config overrides in parallel; stream results as JSONL.
    Sweep(SweepArgs),
    /// Write every indicator of one symbol per bar as CSV.
    DumpIndicators(DumpArgs),
    /// Print the merged config of a symbol/mode and its config_id (canonical JSON).
    Config(ConfigArgs),
    /// Compile the GPU sweep kernel with NVRTC to PTX (compute_XY) or a cubin (sm_XY), for
    /// `sweep --gpu --gpu-kernel FILE` on a machine without NVRTC.
    GpuCompile(GpuCompileArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// Strategy YAML (sections global, symbols, live, modes). Required; a missing file is an error.
    #[arg(long)]
    config: PathBuf,
    /// Candle DB: a file, a comma-separated list of files, or a partition directory.
    #[arg(long)]
    candles_db: String,
    /// Bar interval (default: the config's engine.interval).
    #[arg(long)]
    interval: Option<String>,
    /// Funding DB (table funding_rates); rates apply to open positions when they fall due.
    #[arg(long)]
    funding_db: Option<PathBuf>,
    /// Comma-separated symbols (default: every symbol in the DB minus watchlist_exclude).
    #[arg(long, value_delimiter = ',')]
    symbols: Option<Vec<String>>,
    /// Start (ISO date/time UTC, or epoch seconds/milliseconds), inclusive, on bar open time.
    #[arg(long, visible_alias = "start-ts", visible_alias = "from-ts")]
    start: Option<String>,
    /// End (ISO or epoch s/ms), inclusive, on bar open time.
    #[arg(long, visible_alias = "end-ts", visible_alias = "to-ts")]
    end: Option<String>,
    #[arg(long, default_value_t = 10_000.0)]
    initial_balance: f64,
    /// Override trade.slippage_bps for every symbol.
    #[arg(long)]
    slippage_bps: Option<f64>,
    /// Apply the `live` overlay of the YAML.
    #[arg(long)]
    live: bool,
    /// Apply `modes.<name>` of the YAML.
    #[arg(long)]
    strategy_mode: Option<String>,
    /// Do not trim inputs to their common time range (--start/--end still apply).
    #[arg(long)]
    no_auto_scope: bool,
    /// Print nothing on stderr except errors.
    #[arg(long, short)]
    quiet: bool,
    /// Sub-bar entries: evaluate entries at every close of this finer interval, on the latest
    /// main-bar indicators with the sub-bar's close (default: engine.entry_interval when
    /// --entry-candles-db is given).
    #[arg(long)]
    entry_interval: Option<String>,
    /// Candle DB for --entry-interval (default: --candles-db).
    #[arg(long)]
    entry_candles_db: Option<String>,
    /// Sub-bar exits: check stops, trailing and take profit at every close of this finer interval.
    #[arg(long)]
    exit_interval: Option<String>,
    /// Candle DB for --exit-interval (default: --candles-db).
    #[arg(long)]
    exit_candles_db: Option<String>,
}

impl Common {
    fn opts(&self, init_state: Option<PathBuf>) -> DataOpts {
        DataOpts {
            config: self.config.clone(),
            candles_db: Some(self.candles_db.clone()),
            interval: self.interval.clone(),
            funding_db: self.funding_db.clone(),
            symbols: self.symbols.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
            initial_balance: self.initial_balance,
            slippage_bps: self.slippage_bps,
            live: self.live,
            strategy_mode: self.strategy_mode.clone(),
            init_state,
            no_auto_scope: self.no_auto_scope,
            quiet: self.quiet,
            entry_interval: self.entry_interval.clone(),
            entry_candles_db: self.entry_candles_db.clone(),
            exit_interval: self.exit_interval.clone(),
            exit_candles_db: self.exit_candles_db.clone(),
        }
    }
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    common: Common,
    /// Start from a kernel state exported from paper or live (save_state JSON).
    #[arg(long)]
    init_state: Option<PathBuf>,
    /// Report JSON path ("-" for stdout).
    #[arg(long, default_value = "-")]
    output: String,
    /// Trades CSV (one row per fill).
    #[arg(long)]
    export_trades: Option<String>,
    /// Equity curve CSV (one row per step).
    #[arg(long)]
    equity_curve: Option<String>,
    /// Write the final kernel state JSON here.
    #[arg(long)]
    export_state: Option<String>,
    /// Write the report as one self-contained HTML page (charts, trades, config; no network).
    #[arg(long)]
    html: Option<String>,
    /// Compute indicators on the replay thread too (default: on a second thread, pipelined,
    /// when more than one CPU is available; the results are identical).
    #[arg(long)]
    single_thread: bool,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    sweep_spec: PathBuf,
    /// JSONL output, one row per combo in combo order.
    #[arg(long, default_value = "sweep_results.jsonl")]
    output: String,
    /// Top-K summary JSON (default: <output>.top.json).
    #[arg(long)]
    top_output: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    top_k: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Continue a partial output (its complete rows are kept).
    #[arg(long)]
    resume: bool,
    /// Check every axis path and value against the config schema and each combo's merged config
    /// (the first --limit combos, at most 100,000), then exit.
    #[arg(long)]
    verify_overrides: bool,
    /// Skip combos whose merged config is invalid (they are counted and the first few named);
    /// without it the sweep refuses to start when any combo is invalid.
    #[arg(long)]
    skip_invalid: bool,
    #[arg(long)]
    no_progress: bool,
    /// Memory budget (MiB) for indicator series shared across combos that differ only in
    /// non-indicator parameters.
    #[arg(long, default_value_t = 1024)]
    indicator_cache_mb: usize,
    /// Every combo computes its own indicators (same results, slower; for checks).
    #[arg(long)]
    no_share_indicators: bool,
    /// Run only the first N combos of the grid (`--resume` later continues from there).
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    backend: BackendArgs,
}

/// Which engine runs the sweep's combos (docs/backtester.md, "CUDA sweep").
#[derive(Args, Clone)]
struct BackendArgs {
    /// cpu: the Rust kernel (default); host-cuda: the C++ decision core compiled for this CPU;
    /// gpu: the same core on a CUDA device.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Same as --backend gpu.
    #[arg(long)]
    gpu: bool,
    /// When the GPU cannot be used (no driver, device or NVRTC), run the CPU sweep instead.
    #[arg(long)]
    allow_cpu_fallback: bool,
    /// Kernel made by `ai-quant-bt gpu-compile` (PTX or cubin); default: compile with NVRTC.
    #[arg(long)]
    gpu_kernel: Option<PathBuf>,
    /// libnvrtc.so.12 to compile the kernel with (default: $AIQ_NVRTC_LIB, then the library path).
    #[arg(long)]
    nvrtc_lib: Option<PathBuf>,
    /// CUDA device ordinal.
    #[arg(long, default_value_t = 0)]
    gpu_device: usize,
    /// host-cuda/gpu: combos per backend call, i.e. per upload of the shared inputs (default:
    /// 65,536 on the GPU, 4,096 on the host).
    #[arg(long)]
    core_chunk: Option<u64>,
    /// host-cuda/gpu: at most this many combos per launch (default: what fits in memory).
    #[arg(long)]
    core_batch: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackendKind {
    Cpu,
    HostCuda,
    Gpu,
}

impl BackendArgs {
    fn kind(&self) -> Result<BackendKind, BtError> {
        match (self.gpu, self.backend) {
            (true, Some(k)) if k != BackendKind::Gpu => {
                Err(BtError::new("--gpu means --backend gpu; it contradicts the --backend given"))
            }
            (true, _) => Ok(BackendKind::Gpu),
            (false, k) => Ok(k.unwrap_or(BackendKind::Cpu)),
        }
    }
}

#[derive(Args)]
struct GpuCompileArgs {
    /// compute_XY: PTX (the driver finishes it for the device); sm_XY: a cubin for that GPU.
    #[arg(long, default_value = "compute_90")]
    arch: String,
    /// Output file (PTX text or cubin).
    #[arg(long)]
    out: PathBuf,
    /// libnvrtc.so.12 (default: $AIQ_NVRTC_LIB, then the library path).
    #[arg(long)]
    nvrtc_lib: Option<PathBuf>,
    /// Also write NVRTC's log here (for a cubin: ptxas's registers and spills per kernel).
    #[arg(long)]
    log: Option<PathBuf>,
}

#[derive(Args)]
struct DumpArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    symbol: String,
    /// CSV path ("-" for stdout).
    #[arg(long, default_value = "-")]
    output: String,
}

#[derive(Args)]
struct ConfigArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    symbol: Option<String>,
    #[arg(long)]
    live: bool,
    #[arg(long)]
    strategy_mode: Option<String>,
}

/// `--verify-overrides` checks the merged config of at most this many combos (a few seconds).
const VERIFY_COMBOS_MAX: u64 = 100_000;

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn write_out(path: &str, text: &str) -> Result<(), BtError> {
    if path == "-" {
        println!("{text}");
        Ok(())
    } else {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| BtError::new(format!("{path}: cannot write: {e}")))
    }
}

fn replay(a: ReplayArgs) -> Result<(), BtError> {
    let o = a.common.opts(a.init_state.clone());
    let p = prepare(&o)?;
    let rec = Record { fills: true, equity_curve: a.equity_curve.is_some() || a.html.is_some() };
    let mut kernel = make_kernel(&p.base.cfg, &p.symbol_cfgs(), p.initial_balance, p.init_state.as_ref())?;
    // An exported state may be continued by the daemon, whose audit records every indicator.
    kernel.set_reads_only_banks(a.export_state.is_none());
    let initial_equity = kernel.equity();
    let t0 = std::time::Instant::now();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let r = if a.single_thread || cpus < 2 {
        run(kernel, &p.timeline, rec, initial_equity)?
    } else {
        run_pipelined(kernel, &p.timeline, rec, initial_equity)?
    };
    let secs = t0.elapsed().as_secs_f64();
    if !o.quiet {
        eprintln!(
            "replayed {} bars ({} steps, {} symbols) in {:.3} s ({:.2} M bars/s); {} fills; peak RSS {} MiB",
            r.bars,
            r.steps,
            p.timeline.symbols.len(),
            secs,
            r.bars as f64 / secs.max(1e-9) / 1e6,
            r.fills.len(),
            peak_rss_mib().unwrap_or(0)
        );
    }
    let meta = ReportMeta {
        config_path: o.config.display().to_string(),
        config_id: p.base.config_id.clone(),
        symbol_config_ids: p.symbols.iter().map(|(k, v)| (k.clone(), v.config_id.clone())).collect(),
        strategy: format!("{:?}", p.base.cfg.strategy),
        strategy_mode: o.strategy_mode.clone(),
        live_overlay: o.live,
        inputs: p.inputs.clone(),
        initial_balance: initial_equity,
    };
    let rep = report::build(meta, p.timeline.interval_ms, &r);
    let text = serde_json::to_string_pretty(&rep).map_err(|e| BtError::new(e.to_string()))?;
    write_out(&a.output, &text)?;
    if let Some(path) = &a.html {
        html_report::write(path, &p, &r, &rep)?;
    }
    if let Some(path) = &a.export_trades {
        report::write_trades_csv(path, &r)?;
    }
    if let Some(path) = &a.equity_curve {
        report::write_equity_csv(path, &r, initial_equity)?;
    }
    if let (Some(path), Some(st)) = (&a.export_state, &r.final_state) {
        let text = serde_json::to_string(st).map_err(|e| BtError::new(e.to_string()))?;
        write_out(path, &text)?;
    }
    Ok(())
}

/// The engine a sweep runs on, opened before any data is read so that a missing GPU is reported
/// at once; `None`: the CPU sweep.
fn open_backend(b: &BackendArgs) -> Result<Option<CoreEngine>, BtError> {
    use aiq_cuda::gpu::{GpuDevice, KernelSource};
    match b.kind()? {
        BackendKind::Cpu => Ok(None),
        BackendKind::HostCuda => Ok(Some(CoreEngine::Host)),
        BackendKind::Gpu => {
            let src = match &b.gpu_kernel {
                Some(p) => KernelSource::File(p.clone()),
                None => KernelSource::Nvrtc { lib: b.nvrtc_lib.clone() },
            };
            match GpuDevice::open(b.gpu_device, &src) {
                Ok(dev) => Ok(Some(CoreEngine::Gpu(Box::new(dev)))),
                Err(e) if b.allow_cpu_fallback => {
                    eprintln!(
                        "warning: GPU unavailable: {e}; --allow-cpu-fallback: running the CPU sweep instead"
                    );
                    Ok(None)
                }
                Err(e) => Err(BtError::new(format!("--backend gpu: {e}"))),
            }
        }
    }
}

/// Results and scratch of the host-cuda backend's launches (what "free memory" is on the host).
const HOST_CORE_BUDGET: u64 = 1 << 30;

/// A sweep engine other than the CPU sweep: the C++ decision core on the host or on a GPU.
enum CoreEngine {
    Host,
    Gpu(Box<aiq_cuda::gpu::GpuDevice>),
}

fn sweep(a: SweepArgs) -> Result<(), BtError> {
    let o = a.common.opts(None);
    let spec = SweepSpec::load(&a.sweep_spec)?;
    let engine = if a.verify_overrides { None } else { open_backend(&a.backend)? };
    if let Some(CoreEngine::Gpu(dev)) = &engine {
        if !o.quiet {
            eprintln!(
                "gpu: {} (compute {}.{}), kernel {}",
                dev.name,
                dev.cc / 10,
                dev.cc % 10,
                dev.kernel_origin
            );
        }
    }
    let p = prepare(&o)?;
    if a.verify_overrides {
        let notes = verify(&spec, &p)?;
        let grid = Grid::new(&spec, &p.base_json)?;
        let combos = grid.len();
        for n in &notes {
            eprintln!("warning: {n}");
        }
        let upto = a.limit.unwrap_or(combos).min(combos).min(VERIFY_COMBOS_MAX);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(a.threads.unwrap_or(0))
            .build()
            .map_err(|e| BtError::new(format!("thread pool: {e}")))?;
        let invalid = check_combos(&p, &spec, &grid, 0, upto, &pool)?;
        if invalid.count > 0 {
            let hint = if a.skip_invalid { "; --skip-invalid skips them" } else { "" };
            return Err(BtError::new(format!("{}{hint}", invalid.message())));
        }
        let scope = if upto == combos {
            String::new()
        } else {
            format!(" (merged configs of the first {upto} checked)")
        };
        println!("overrides OK: {} axes, {combos} combos{scope}", spec.axes.len());
        return Ok(());
    }
    let threads = a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let so = SweepOpts {
        top_output: a.top_output.clone().unwrap_or_else(|| format!("{}.top.json", a.output)),
        output: a.output.clone(),
        top_k: a.top_k,
        threads,
        resume: a.resume,
        progress: !a.no_progress && !o.quiet,
        indicator_cache_mib: if a.no_share_indicators { 0 } else { a.indicator_cache_mb },
        limit: a.limit,
        verbose: !o.quiet,
        skip_invalid: a.skip_invalid,
    };
    let t0 = std::time::Instant::now();
    let (ran, total, best) = match engine {
        None => run_sweep(&p, &spec, &so)?,
        Some(engine) => {
            use aiq_cuda::gpu::{BatchSettings, GpuBackend, HostBatchedBackend, HostTarget};
            let mut settings = BatchSettings::default();
            if let Some(b) = a.backend.core_batch {
                settings.max_batch = b.max(1);
            }
            let res = match engine {
                CoreEngine::Host => {
                    let target = HostTarget::new(threads, HOST_CORE_BUDGET);
                    let mut b = HostBatchedBackend::new(target, settings);
                    let chunk = a.backend.core_chunk.unwrap_or(4096).max(1);
                    let res = run_core_sweep_chunked(&p, &spec, &so, &mut b, chunk);
                    (res, b.stats())
                }
                CoreEngine::Gpu(dev) => {
                    let mut b = GpuBackend::new(*dev, settings);
                    let chunk = a.backend.core_chunk.unwrap_or(65_536).max(1);
                    let res = run_core_sweep_chunked(&p, &spec, &so, &mut b, chunk);
                    (res, b.stats())
                }
            };
            if !o.quiet {
                eprintln!("{}", res.1);
            }
            res.0?
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    if !o.quiet {
        let bars = p.timeline.bars() as f64;
        eprintln!(
            "sweep: {ran} combos run ({total} in the grid) on {threads} threads in {secs:.2} s; \
             {:.2} M bar-combos/s; best total_pnl {}; peak RSS {} MiB",
            bars * ran as f64 / secs.max(1e-9) / 1e6,
            best.first().map_or("n/a".to_string(), |r| format!("{:.2} ({})", r.total_pnl, r.id)),
            peak_rss_mib().unwrap_or(0)
        );
    }
    Ok(())
}

fn gpu_compile(a: GpuCompileArgs) -> Result<(), BtError> {
    use aiq_cuda::nvrtc;
    let gpu = |e: aiq_cuda::error::GpuError| BtError::new(e.to_string());
    let target = nvrtc::Target::parse(&a.arch).map_err(gpu)?;
    nvrtc::load_nvrtc(a.nvrtc_lib.as_deref()).map_err(gpu)?;
    let (major, minor) = nvrtc::nvrtc_version().map_err(gpu)?;
    let c = nvrtc::compile(target).map_err(gpu)?;
    std::fs::write(&a.out, &c.image)
        .map_err(|e| BtError::new(format!("--out {}: cannot write: {e}", a.out.display())))?;
    if let Some(p) = &a.log {
        std::fs::write(p, &c.log)
            .map_err(|e| BtError::new(format!("--log {}: cannot write: {e}", p.display())))?;
    }
    let log = c.log.trim();
    if !log.is_empty() {
        eprintln!("{log}");
    }
    eprintln!(
        "wrote {} ({} bytes, {}, NVRTC {major}.{minor}, options {})",
        a.out.display(),
        c.image.len(),
        target.arch(),
        target.options().join(" ")
    );
    Ok(())
}

fn dump_indicators(a: DumpArgs) -> Result<(), BtError> {
    let mut o = a.common.opts(None);
    o.symbols = Some(vec![a.symbol.clone()]);
    let p = prepare(&o)?;
    if a.output == "-" {
        let stdout = std::io::stdout();
        let mut lock = std::io::BufWriter::new(stdout.lock());
        dump::dump(&p, &a.symbol, &mut lock)?;
    } else {
        let f = std::fs::File::create(&a.output)
            .map_err(|e| BtError::new(format!("{}: cannot create: {e}", a.output)))?;
        let mut w = std::io::BufWriter::new(f);
        let n = dump::dump(&p, &a.symbol, &mut w)?;
        if !o.quiet {
            eprintln!("wrote {n} rows to {}", a.output);
        }
    }
    Ok(())
}

fn config_cmd(a: ConfigArgs) -> Result<(), BtError> {
    if !a.config.is_file() {
        return Err(BtError::new(format!("--config {}: the file does not exist", a.config.display())));
    }
    let f = ConfigFile::load(&a.config)?;
    let r = f.resolve(a.symbol.as_deref(), a.live, a.strategy_mode.as_deref())?;
    let v = serde_json::json!({"config_id": r.config_id, "config": r.json});
    println!("{}", canonical_json(&v));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Replay(a) => replay(a),
        Cmd::Sweep(a) => sweep(a),
        Cmd::DumpIndicators(a) => dump_indicators(a),
        Cmd::Config(a) => config_cmd(a),
        Cmd::GpuCompile(a) => gpu_compile(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
