-- rfc2544.lua: RFC 2544 (section 26.1) throughput of the device under test for each frame size,
-- in frames per second, with pktgen's offered rate measured in every trial. Pktgen-DPDK 23.06.x.
--
--   PF_TRIAL_S=10 PF_SIZES=64,128,256,512,1024,1280,1518 \
--     pktgen -l 0-2 -n 4 --no-pci --vdev=... -- -P -m "[1:2].0,[1:2].1" -f bench/pktgen/rfc2544.lua
--   (headless: script -qfec "pktgen ... -f bench/pktgen/rfc2544.lua" /dev/null; bench/pktgen/lab.sh
--   runs the one-box memif lab)
--
-- For each size: warm-up (learning frames, RFC 2544 section 23) at PF_WARMUP_MPPS (0.1 Mpps) for
-- PF_WARMUP_S; one flat-out trial (pktgen at 100 %: the generator's maximum offered rate and the
-- DUT's maximum forwarding rate); if that trial lost nothing (<= PF_LOSS_TOL %) the result is that
-- trial, flagged generator-bound; else a binary search on the offered rate in frames per second,
-- starting at the maximum forwarding rate, until the interval is narrower than PF_RESOLUTION %
-- of the maximum forwarding rate. Every trial measures what pktgen really sent: a trial that
-- offered less than PF_OFFERED_MIN (98) % of the asked rate is invalid, retried PF_RETRIES (1)
-- times, and never counts as a pass. Loss: opackets of the tx ports minus ipackets of the rx
-- ports. Optional PF_CONFIRM_S: one more trial at the result (RFC 2544 asks for 60 s);
-- PF_LATENCY=1 runs that trial with pktgen's latency probes (RFC 2544 section 26.2).
--
-- Output: a table on pktgen's console and in <PF_OUT>-rfc2544.txt, one CSV row per size in
-- <PF_OUT>-rfc2544.csv and one per trial (valid flag included) in <PF_OUT>-rfc2544-trials.csv.
-- See README.md for every variable and the lab wiring.

-- pflib.lua sits next to this script (or set PF_LIB to its path).
local here = debug and string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local pf = dofile(os.getenv("PF_LIB") or (here .. "pflib.lua"))

local cfg = pf.config()
local sizes = pf.list("PF_SIZES", "64,128,256,512,1024,1280,1518")
local confirm_ms = math.floor(pf.num("PF_CONFIRM_S", 0) * 1000)

pf.open_log(cfg.out .. "-rfc2544.txt")
if not pf.prepare(cfg) then
    pf.finish(cfg)
    return
end
pf.setup_single(cfg)
local mbps = pf.link_mbps(cfg.tx_list[1]) or 0
local ntx = #cfg.tx_list

local results = pf.csv(cfg.out .. "-rfc2544.csv", {
    "frame_bytes", "status", "throughput_mpps", "offered_mpps", "rate_pct", "max_offered_mpps",
    "max_forwarding_mpps", "resolution_mpps", "l1_gbps", "l2_gbps", "line_rate_mpps",
    "frames_sent", "frames_lost", "loss_pct", "loss_tol_pct", "trials", "invalid_trials",
    "gen_rx_drops", table.unpack(pf.LATENCY_COLUMNS),
})
local per_trial = pf.csv(cfg.out .. "-rfc2544-trials.csv",
    { "frame_bytes", table.unpack(pf.TRIAL_COLUMNS) })

pf.say("RFC 2544 throughput: trials of %g s, loss tolerance %g %%, resolution %g %% of the maximum " ..
    "forwarding rate, offered >= %g %% of asked, warm-up %g s at %g Mpps",
    cfg.trial_ms / 1000, cfg.loss_tol, cfg.resolution, cfg.offered_min * 100,
    cfg.warmup_ms / 1000, cfg.warmup_pps / 1e6)

local function mpps(v)
    return string.format("%.4f", (v or 0) / 1e6)
end

local rows = {}
for _, size in ipairs(sizes) do
    pktgen.set(cfg.tx, "size", size)
    cfg.frame_bytes = size
    pf.warmup(cfg)
    local invalid = 0
    local function on_trial(t)
        if not t.valid then
            invalid = invalid + 1
        end
        pf.say("  %5d B  %s", size, pf.trial_text(t))
        local cells = pf.trial_cells(cfg, t)
        per_trial.row({ size, table.unpack(cells) })
    end
    local best, trials, info = pf.search(cfg, on_trial)
    local lat = nil
    if best ~= nil and (confirm_ms > 0 or cfg.latency) then
        local ms = confirm_ms > 0 and confirm_ms or cfg.trial_ms
        local ask = best.asked_pps and best.tx_pps or nil -- flat out stays flat out
        local c
        if cfg.latency then
            c, lat = pf.latency_trial(cfg, ask, ms)
        else
            local keep = cfg.trial_ms
            cfg.trial_ms = ms
            c = pf.trial(cfg, ask)
            cfg.trial_ms = keep
        end
        c.kind = "confirm"
        c.iter = #trials + 1
        trials[#trials + 1] = c
        on_trial(c)
        if cfg.latency then
            pf.say("  %5d B  %s", size, pf.latency_text(lat))
        end
        if c.pass then
            best = c
        else
            best.unconfirmed = true
            pf.say("  %5d B  confirming trial failed: reported as not confirmed", size)
        end
    end
    local row = { size = size, status = info.status, info = info, best = best, lat = lat,
        trials = #trials, invalid = invalid }
    if best ~= nil and best.unconfirmed then
        row.status = row.status .. "-unconfirmed"
    end
    row.line = pf.line_rate_pps(cfg.mbps, size) * ntx
    rows[#rows + 1] = row
    local b = best or { tx_pps = 0, rx_pps = 0, rate = 0, sent = 0, lost = 0, loss_pct = 0,
        gen_rx_drops = 0 }
    local cells = { size, row.status, mpps(b.rx_pps), mpps(b.tx_pps),
        string.format("%.4f", b.rate), mpps(info.max_offered_pps), mpps(info.max_forwarding_pps),
        mpps(info.resolution_pps), string.format("%.3f", b.rx_pps * (size + 20) * 8 / 1e9),
        string.format("%.3f", b.rx_pps * size * 8 / 1e9), mpps(row.line), b.sent, b.lost,
        string.format("%.6f", b.loss_pct), cfg.loss_tol, row.trials, invalid, b.gen_rx_drops }
    for _, v in ipairs(pf.latency_cells(lat)) do
        cells[#cells + 1] = v
    end
    results.row(cells)
end
results.close()
per_trial.close()

pf.say("")
pf.say("RFC 2544 throughput (loss tolerance %g %%), %d tx port(s), link %s Mb/s", cfg.loss_tol, ntx,
    tostring(mbps))
pf.say("%6s %10s %10s %9s %9s %10s %10s %7s %s", "frame", "fwd Mpps", "offer Mpps", "Gb/s L1",
    "Gb/s L2", "max offer", "max fwd", "trials", "status")
for _, r in ipairs(rows) do
    local b = r.best or { tx_pps = 0, rx_pps = 0 }
    pf.say("%6d %10.4f %10.4f %9.3f %9.3f %10.4f %10.4f %4d/%-2d %s%s", r.size, b.rx_pps / 1e6,
        b.tx_pps / 1e6, b.rx_pps * (r.size + 20) * 8 / 1e9, b.rx_pps * r.size * 8 / 1e9,
        r.info.max_offered_pps / 1e6, r.info.max_forwarding_pps / 1e6, r.trials, r.invalid,
        r.status, r.lat and string.format("  latency avg/max %.1f/%.1f us", r.lat.avg, r.lat.max) or "")
end
pf.say("status: ok = the highest rate with loss <= tolerance, to within the resolution; " ..
    "generator-bound = the flat-out trial passed: the DUT forwards at least what the generator " ..
    "can offer; unconverged = PF_MAX_ITER ran out, a lower bound; none = no valid trial passed. " ..
    "trials = all/invalid.")
pf.say("results: %s-rfc2544.csv (per trial: %s-rfc2544-trials.csv)", cfg.out, cfg.out)
pf.finish(cfg)
